//! `[security]` and `[endpoints.security]` into a `switchboard::Security`.

use std::path::Path;

use switchboard::Security;
use switchboard::security::{
    ApiKeyAuth, HasPermission, Identity, IsAdmin, IsAuthenticated, JwtAlgorithm, JwtAuth, JwtKey,
    OriginPolicy, RateLimit, TokenSource,
};

use super::plan::Problems;
use super::{ApiKeySection, JwtSection, RateLimitSection, SecuritySection};

/// Shortest API key accepted (for the HTTP API and for WebSocket clients).
pub(crate) const MIN_KEY_LEN: usize = 16;

/// Builds the security of one scope; problems are named under `at`
/// (`security`, `endpoints[2].security`).
pub(super) fn build(at: &str, section: &SecuritySection, problems: &mut Problems) -> Security {
    let mut security = Security::new();
    match &section.origins {
        None => {}
        Some(patterns) if patterns.is_empty() => problems.push(
            format!("{at}.origins"),
            "empty: list the origins to accept, or leave the key out for same-origin only",
        ),
        Some(patterns) => match OriginPolicy::allow_list(patterns) {
            Ok(policy) => security = security.origins(policy),
            Err(e) => problems.push(format!("{at}.origins"), e.to_string()),
        },
    }
    if !section.allow_missing_origin {
        security = security.deny_missing_origin();
    }
    if let Some(limit) = &section.rate_limit
        && let Some(limit) = rate_limit(&format!("{at}.rate_limit"), limit, problems)
    {
        security = security.rate_limit(limit);
    }
    if let Some(n) = section.max_connections_per_ip {
        positive(&format!("{at}.max_connections_per_ip"), n, problems);
        security = security.max_connections_per_ip(n);
    }
    if let Some(n) = section.max_connections_per_user {
        positive(&format!("{at}.max_connections_per_user"), n, problems);
        security = security.max_connections_per_user(n);
    }
    let mut sources = Vec::new();
    for (i, source) in section.token_sources.iter().enumerate() {
        match token_source(source) {
            Ok(source) => sources.push(source),
            Err(e) => problems.push(format!("{at}.token_sources[{i}]"), e),
        }
    }
    security = security.tokens_from(sources);
    if section.auth_timeout.0.is_zero() {
        problems.push(format!("{at}.auth_timeout"), "must be more than 0");
    }
    security = security.auth_timeout(section.auth_timeout.0);
    if let Some(jwt) = &section.jwt
        && let Some(auth) = jwt_auth(&format!("{at}.jwt"), jwt, problems)
    {
        security = security.authenticate(auth);
    }
    if !section.api_keys.is_empty() {
        let keys = api_keys(&format!("{at}.api_keys"), &section.api_keys, problems);
        security = security.authenticate(keys);
    }
    let authenticates = section.jwt.is_some() || !section.api_keys.is_empty();
    for (i, guard) in section.guards.iter().enumerate() {
        let key = format!("{at}.guards[{i}]");
        match guard.split_once(':') {
            None if guard == "authenticated" => security = security.guard(IsAuthenticated),
            None if guard == "admin" => security = security.guard(IsAdmin::default()),
            Some(("permission", name)) if !name.is_empty() => {
                security = security.guard(HasPermission(name.to_owned()));
            }
            _ => problems.push(
                key.clone(),
                format!(
                    "unknown guard {guard:?}: use \"authenticated\", \"admin\" or \"permission:<name>\""
                ),
            ),
        }
        if !authenticates {
            problems.push(
                key,
                "a guard needs authentication to pass: configure jwt or api_keys in the same section",
            );
        }
    }
    security
}

fn positive(key: &str, n: usize, problems: &mut Problems) {
    if n == 0 {
        problems.push(key, "must be at least 1");
    }
}

/// A rate limit: `per_second` or `per_minute` (one of them), `burst`, `max_clients`.
pub(super) fn rate_limit(
    at: &str,
    section: &RateLimitSection,
    problems: &mut Problems,
) -> Option<RateLimit> {
    let mut limit = match (section.per_second, section.per_minute) {
        (Some(rate), None) if rate.is_finite() && rate > 0.0 => RateLimit::per_second(rate),
        (None, Some(rate)) if rate.is_finite() && rate > 0.0 => RateLimit::per_minute(rate),
        (Some(_), Some(_)) => {
            problems.push(at, "set per_second or per_minute, not both");
            return None;
        }
        (None, None) => {
            problems.push(at, "needs per_second or per_minute");
            return None;
        }
        (Some(_), None) => {
            problems.push(format!("{at}.per_second"), "must be a number above 0");
            return None;
        }
        (None, Some(_)) => {
            problems.push(format!("{at}.per_minute"), "must be a number above 0");
            return None;
        }
    };
    if let Some(burst) = section.burst {
        if burst == 0 {
            problems.push(format!("{at}.burst"), "must be at least 1");
        }
        limit = limit.with_burst(burst.max(1));
    }
    if let Some(n) = section.max_clients {
        positive(&format!("{at}.max_clients"), n, problems);
        limit = limit.with_max_clients(n.max(1));
    }
    Some(limit)
}

fn token_source(source: &str) -> Result<TokenSource, String> {
    match source.split_once(':') {
        None if source == "bearer" => Ok(TokenSource::Bearer),
        Some(("query", name)) if !name.is_empty() => Ok(TokenSource::query(name)),
        Some(("cookie", name)) if !name.is_empty() => Ok(TokenSource::cookie(name)),
        Some(("protocol", prefix)) if !prefix.is_empty() => Ok(TokenSource::protocol(prefix)),
        _ => Err(format!(
            "unknown token source {source:?}: use \"bearer\", \"query:<name>\", \"cookie:<name>\" or \"protocol:<prefix>\""
        )),
    }
}

fn algorithm(name: &str) -> Option<JwtAlgorithm> {
    Some(match name {
        "HS256" => JwtAlgorithm::HS256,
        "HS384" => JwtAlgorithm::HS384,
        "HS512" => JwtAlgorithm::HS512,
        "RS256" => JwtAlgorithm::RS256,
        "RS384" => JwtAlgorithm::RS384,
        "RS512" => JwtAlgorithm::RS512,
        "PS256" => JwtAlgorithm::PS256,
        "PS384" => JwtAlgorithm::PS384,
        "PS512" => JwtAlgorithm::PS512,
        "ES256" => JwtAlgorithm::ES256,
        "ES384" => JwtAlgorithm::ES384,
        "EdDSA" => JwtAlgorithm::EdDSA,
        _ => return None,
    })
}

/// A secret given inline or through an environment variable (exactly one).
fn secret(
    at: &str,
    field: &str,
    inline: Option<&str>,
    env: Option<&str>,
    problems: &mut Problems,
) -> Option<String> {
    match (inline, env) {
        (Some(value), None) => Some(value.to_owned()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Some(value),
            _ => {
                problems.push(
                    format!("{at}.{field}_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push(at, format!("set {field} or {field}_env, not both"));
            None
        }
        (None, None) => {
            problems.push(at, format!("needs {field} or {field}_env"));
            None
        }
    }
}

fn read_pem(key: &str, path: &Path, problems: &mut Problems) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(pem) => Some(pem),
        Err(e) => {
            problems.push(key, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn jwt_auth(at: &str, section: &JwtSection, problems: &mut Problems) -> Option<JwtAuth> {
    let mut auth = JwtAuth::new();
    for (i, k) in section.keys.iter().enumerate() {
        let at = format!("{at}.keys[{i}]");
        let Some(alg) = algorithm(&k.algorithm) else {
            problems.push(
                format!("{at}.algorithm"),
                format!(
                    "unknown algorithm {:?}: use HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA",
                    k.algorithm
                ),
            );
            continue;
        };
        let hmac = matches!(
            alg,
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
        );
        let key = if hmac {
            if k.public_key_file.is_some() {
                problems.push(
                    format!("{at}.public_key_file"),
                    format!("{} uses a secret, not a public key", k.algorithm),
                );
                continue;
            }
            let inline = k.secret.as_ref().map(|s| s.expose());
            let Some(secret) = secret(&at, "secret", inline, k.secret_env.as_deref(), problems)
            else {
                continue;
            };
            JwtKey::hmac(alg, secret)
        } else {
            if k.secret.is_some() || k.secret_env.is_some() {
                problems.push(
                    format!("{at}.secret"),
                    format!(
                        "{} uses a public key (public_key_file), not a secret",
                        k.algorithm
                    ),
                );
                continue;
            }
            let Some(path) = &k.public_key_file else {
                problems.push(
                    format!("{at}.public_key_file"),
                    format!("required for {}", k.algorithm),
                );
                continue;
            };
            let Some(pem) = read_pem(&format!("{at}.public_key_file"), path, problems) else {
                continue;
            };
            match alg {
                JwtAlgorithm::ES256 | JwtAlgorithm::ES384 => JwtKey::ec_pem(alg, pem),
                JwtAlgorithm::EdDSA => JwtKey::ed_pem(pem),
                _ => JwtKey::rsa_pem(alg, pem),
            }
        };
        match key {
            Ok(key) => {
                let key = match &k.kid {
                    Some(kid) => key.with_kid(kid),
                    None => key,
                };
                auth = auth.key(key);
            }
            Err(e) => problems.push(at, e.to_string()),
        }
    }
    if let Some(path) = &section.jwks_file {
        match auth.clone().jwks_file(path) {
            Ok(with_jwks) => auth = with_jwks,
            Err(e) => problems.push(format!("{at}.jwks_file"), e.to_string()),
        }
    }
    if section.keys.is_empty() && section.jwks_file.is_none() {
        problems.push(at, "no keys: add [[...jwt.keys]] or jwks_file");
        return None;
    }
    for issuer in &section.issuers {
        auth = auth.issuer(issuer);
    }
    for audience in &section.audiences {
        auth = auth.audience(audience);
    }
    if section.user_claim.is_empty() {
        problems.push(format!("{at}.user_claim"), "must not be empty");
    }
    Some(
        auth.leeway(section.leeway.0)
            .user_claim(&section.user_claim)
            .permissions_claim(&section.permissions_claim),
    )
}

fn api_keys(at: &str, keys: &[ApiKeySection], problems: &mut Problems) -> ApiKeyAuth {
    let mut auth = ApiKeyAuth::new();
    for (i, k) in keys.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if k.user.is_empty() {
            problems.push(
                format!("{at}.user"),
                "required: the user id the key stands for",
            );
            continue;
        }
        let inline = k.key.as_ref().map(|s| s.expose());
        let Some(key) = secret(&at, "key", inline, k.key_env.as_deref(), problems) else {
            continue;
        };
        if key.chars().count() < MIN_KEY_LEN {
            problems.push(
                format!("{at}.key"),
                format!("too short: use at least {MIN_KEY_LEN} characters"),
            );
            continue;
        }
        let identity = Identity::new(k.user.as_str())
            .with_permissions(k.permissions.iter().map(String::as_str))
            .with_admin(k.admin);
        auth = auth.key(key, identity);
    }
    auth
}
