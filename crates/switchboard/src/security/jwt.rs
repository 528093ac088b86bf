//! JWT authentication, with algorithms pinned per key.

use std::collections::HashSet;
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::auth::{AuthError, AuthRequest, Authenticator};
use super::guard::claim_matches;
use crate::error::Error;
use crate::identity::Identity;

/// A JWS signature algorithm. Each [`JwtKey`] accepts exactly one: the
/// algorithm named in a token's header only selects among keys, it never
/// decides how a key is used (so `alg: none` and HS256 tokens "signed" with
/// an RSA public key are refused).
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 (secret of 32 bytes or more).
    HS256,
    /// HMAC with SHA-384 (secret of 48 bytes or more).
    HS384,
    /// HMAC with SHA-512 (secret of 64 bytes or more).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    fn to_jwt(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::HS384 => Algorithm::HS384,
            Self::HS512 => Algorithm::HS512,
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }

    fn from_jwk(alg: KeyAlgorithm) -> Option<Self> {
        Some(match alg {
            KeyAlgorithm::HS256 => Self::HS256,
            KeyAlgorithm::HS384 => Self::HS384,
            KeyAlgorithm::HS512 => Self::HS512,
            KeyAlgorithm::RS256 => Self::RS256,
            KeyAlgorithm::RS384 => Self::RS384,
            KeyAlgorithm::RS512 => Self::RS512,
            KeyAlgorithm::PS256 => Self::PS256,
            KeyAlgorithm::PS384 => Self::PS384,
            KeyAlgorithm::PS512 => Self::PS512,
            KeyAlgorithm::ES256 => Self::ES256,
            KeyAlgorithm::ES384 => Self::ES384,
            KeyAlgorithm::EdDSA => Self::EdDSA,
            _ => return None,
        })
    }
}

/// One verification key, pinned to one algorithm, optionally named by a
/// key id (`kid`).
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    algorithm: JwtAlgorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// An HMAC secret for `algorithm` (HS256, HS384 or HS512). The secret
    /// must be at least as long as the hash (32, 48 or 64 bytes, RFC 7518
    /// §3.2): shorter ones can be brute-forced from a single token.
    pub fn hmac(algorithm: JwtAlgorithm, secret: impl AsRef<[u8]>) -> Result<Self, Error> {
        let min = match algorithm {
            JwtAlgorithm::HS256 => 32,
            JwtAlgorithm::HS384 => 48,
            JwtAlgorithm::HS512 => 64,
            other => return Err(family_error(other, "an HMAC")),
        };
        let secret = secret.as_ref();
        if secret.len() < min {
            return Err(Error::Config(format!(
                "a {algorithm:?} secret needs at least {min} bytes, got {}",
                secret.len()
            )));
        }
        Ok(Self::new(algorithm, DecodingKey::from_secret(secret)))
    }

    /// An RSA public key in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC
    /// KEY`) for `algorithm` (RS256/384/512 or PS256/384/512).
    pub fn rsa_pem(algorithm: JwtAlgorithm, pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        Self::from_pem(algorithm, AlgorithmFamily::Rsa, "an RSA", || {
            DecodingKey::from_rsa_pem(pem.as_ref())
        })
    }

    /// An EC public key in PEM for ES256 (P-256) or ES384 (P-384).
    pub fn ec_pem(algorithm: JwtAlgorithm, pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        Self::from_pem(algorithm, AlgorithmFamily::Ec, "an ECDSA", || {
            DecodingKey::from_ec_pem(pem.as_ref())
        })
    }

    /// An Ed25519 public key in PEM, for EdDSA.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        Self::from_pem(JwtAlgorithm::EdDSA, AlgorithmFamily::Ed, "an EdDSA", || {
            DecodingKey::from_ed_pem(pem.as_ref())
        })
    }

    /// Names the key: tokens whose header carries this `kid` are checked
    /// against it, and only against it.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    fn new(algorithm: JwtAlgorithm, key: DecodingKey) -> Self {
        Self {
            kid: None,
            algorithm,
            key,
        }
    }

    fn from_pem(
        algorithm: JwtAlgorithm,
        family: AlgorithmFamily,
        kind: &str,
        parse: impl FnOnce() -> jsonwebtoken::errors::Result<DecodingKey>,
    ) -> Result<Self, Error> {
        if algorithm.to_jwt().family() != family {
            return Err(family_error(algorithm, kind));
        }
        let key = parse().map_err(|e| Error::Config(format!("invalid {algorithm:?} key: {e}")))?;
        Ok(Self::new(algorithm, key))
    }
}

fn family_error(algorithm: JwtAlgorithm, kind: &str) -> Error {
    Error::Config(format!("{algorithm:?} is not {kind} algorithm"))
}

/// Authenticates with a signed JWT.
///
/// The token must carry `exp` (and `iss`/`aud` when issuers or audiences
/// are configured); `exp` and `nbf` are checked with [`JwtAuth::leeway`].
/// The identity's user id is the `sub` claim, its permissions the
/// `permissions` array and the space-separated `scope`, and it is an
/// administrator when `"admin": true` (all configurable). The connection is
/// closed with 4003 when `exp` plus the leeway passes
/// ([`Identity::closes_at`]); [`Identity::expires_at`] is `exp` itself.
///
/// Refusals answer `401 Invalid token: <reason>`, where the reason is one of
/// `malformed token`, `unknown key id`, `missing key id`, `algorithm not
/// allowed`, `bad signature`, `token expired`, `token not yet valid`,
/// `wrong issuer`, `wrong audience`, `missing claim <name>` or `invalid
/// claim <name>`, never anything about the keys.
///
/// ```no_run
/// use std::time::Duration;
/// use switchboard::security::{JwtAlgorithm, JwtAuth, JwtKey};
///
/// # fn keys() -> Result<(), switchboard::Error> {
/// let shared = JwtAuth::hs256(std::env::var("JWT_SECRET").unwrap())
///     .issuer("https://auth.example.com")
///     .audience("switchboard");
///
/// let rotating = JwtAuth::new()
///     .key(JwtKey::rsa_pem(JwtAlgorithm::RS256, std::fs::read("k1.pem")?)?.with_kid("k1"))
///     .jwks_file("/etc/switchboard/jwks.json")?
///     .leeway(Duration::from_secs(30));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtAuth {
    keys: Vec<(JwtKey, Validation)>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    user_claim: String,
    permissions_claim: String,
    scope_claim: String,
    admin_claim: (String, Value),
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field(
                "keys",
                &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("user_claim", &self.user_claim)
            .finish_non_exhaustive()
    }
}

impl Default for JwtAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtAuth {
    /// No keys yet (add them with [`JwtAuth::key`] or [`JwtAuth::jwks`]);
    /// no issuer or audience check; leeway 60 s; user id from `sub`.
    pub fn new() -> Self {
        Self {
            keys: Vec::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(60),
            user_claim: "sub".to_owned(),
            permissions_claim: "permissions".to_owned(),
            scope_claim: "scope".to_owned(),
            admin_claim: ("admin".to_owned(), Value::Bool(true)),
        }
    }

    /// HS256 with a shared secret.
    ///
    /// # Panics
    /// If the secret is shorter than 32 bytes (use [`JwtKey::hmac`] to get an error instead).
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::new().key(JwtKey::hmac(JwtAlgorithm::HS256, secret).expect("HS256 secret"))
    }

    /// HS384 with a shared secret.
    ///
    /// # Panics
    /// If the secret is shorter than 48 bytes.
    pub fn hs384(secret: impl AsRef<[u8]>) -> Self {
        Self::new().key(JwtKey::hmac(JwtAlgorithm::HS384, secret).expect("HS384 secret"))
    }

    /// HS512 with a shared secret.
    ///
    /// # Panics
    /// If the secret is shorter than 64 bytes.
    pub fn hs512(secret: impl AsRef<[u8]>) -> Self {
        Self::new().key(JwtKey::hmac(JwtAlgorithm::HS512, secret).expect("HS512 secret"))
    }

    /// Adds a key. A token with a `kid` is checked against the keys with
    /// that id and the keys without one; a token without `kid`, against
    /// the keys without one.
    pub fn key(mut self, key: JwtKey) -> Self {
        let validation = self.validation(key.algorithm);
        self.keys.push((key, validation));
        self
    }

    /// Adds the signing keys of a JWKS document (`{"keys": [...]}`).
    /// Each key is pinned to its `alg`, or without one to the usual
    /// algorithm of its type (RS256 for RSA, ES256/ES384 for P-256/P-384,
    /// EdDSA for Ed25519); symmetric (`oct`) keys need an `alg`. Keys for
    /// encryption, with an `alg` their type cannot do, or of an unsupported
    /// type are skipped; a document with no usable key is an error.
    pub fn jwks(mut self, json: &str) -> Result<Self, Error> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| Error::Config(format!("invalid JWKS: {e}")))?;
        let mut added = 0;
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let inferred = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Some(JwtAlgorithm::RS256),
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => Some(JwtAlgorithm::ES256),
                    EllipticCurve::P384 => Some(JwtAlgorithm::ES384),
                    _ => None,
                },
                AlgorithmParameters::OctetKeyPair(okp) => {
                    (okp.curve == EllipticCurve::Ed25519).then_some(JwtAlgorithm::EdDSA)
                }
                _ => None,
            };
            let algorithm = match jwk.common.key_algorithm {
                Some(alg) => JwtAlgorithm::from_jwk(alg),
                None => inferred,
            };
            let kid = jwk.common.key_id.as_deref().unwrap_or("(no kid)");
            let Some(algorithm) = algorithm else {
                tracing::warn!(kid, "JWKS key skipped: no supported signature algorithm");
                continue;
            };
            let key = match DecodingKey::from_jwk(jwk) {
                Ok(key) if key.family() == algorithm.to_jwt().family() => key,
                _ => {
                    tracing::warn!(
                        kid,
                        ?algorithm,
                        "JWKS key skipped: not a valid key for its algorithm"
                    );
                    continue;
                }
            };
            let mut key = JwtKey::new(algorithm, key);
            key.kid = jwk.common.key_id.clone();
            self = self.key(key);
            added += 1;
        }
        if added == 0 {
            return Err(Error::Config(
                "the JWKS has no usable signing key".to_owned(),
            ));
        }
        Ok(self)
    }

    /// Adds the signing keys of a JWKS file (see [`JwtAuth::jwks`]).
    pub fn jwks_file(self, path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read JWKS {}: {e}", path.display())))?;
        self.jwks(&json)
    }

    /// Accepts tokens from issuer `iss` (call again for several). Once one
    /// is set, `iss` is required.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self.rebuild()
    }

    /// Accepts tokens for audience `aud` (call again for several). Once
    /// one is set, `aud` is required; until then `aud` is not checked.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self.rebuild()
    }

    /// Clock skew tolerated on `exp` and `nbf` (whole seconds). Default 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self.rebuild()
    }

    /// The claim holding the user id (a string or a number). Default `sub`.
    pub fn user_claim(mut self, name: impl Into<String>) -> Self {
        self.user_claim = name.into();
        self
    }

    /// The claim holding the permissions array. Default `permissions`
    /// (the space-separated `scope` claim is read too).
    pub fn permissions_claim(mut self, name: impl Into<String>) -> Self {
        self.permissions_claim = name.into();
        self
    }

    /// Administrators are tokens whose claim `name` equals `value` or is an
    /// array containing it. Default: `"admin": true`.
    pub fn admin_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.admin_claim = (name.into(), value.into());
        self
    }

    /// Verifies `token` and returns its identity (what the handshake does;
    /// also useful to check a refreshed token).
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid("malformed token"))?;
        let by_kid: Vec<_> = self
            .keys
            .iter()
            .filter(|(key, _)| match (&header.kid, &key.kid) {
                (_, None) => true,
                (Some(wanted), Some(kid)) => wanted == kid,
                (None, Some(_)) => false,
            })
            .collect();
        if by_kid.is_empty() {
            return Err(AuthError::invalid(if header.kid.is_some() {
                "unknown key id"
            } else {
                "missing key id"
            }));
        }
        let mut last = AuthError::invalid("algorithm not allowed");
        for (key, validation) in by_kid {
            if key.algorithm.to_jwt() != header.alg {
                continue;
            }
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => return self.identity(data.claims),
                Err(e) => {
                    let signature = matches!(e.kind(), ErrorKind::InvalidSignature);
                    last = AuthError::invalid(reason(e.kind()));
                    // The signature held: the claims are what failed, and
                    // another key would not change that.
                    if !signature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    fn identity(&self, claims: Map<String, Value>) -> Result<Identity, AuthError> {
        let user = match claims.get(&self.user_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(AuthError::invalid(format!(
                    "invalid claim {}",
                    self.user_claim
                )));
            }
            None => {
                return Err(AuthError::invalid(format!(
                    "missing claim {}",
                    self.user_claim
                )));
            }
        };
        let mut permissions: Vec<String> = match claims.get(&self.permissions_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if let Some(Value::String(scope)) = claims.get(&self.scope_claim) {
            permissions.extend(scope.split_whitespace().map(str::to_owned));
        }
        let admin = claim_matches(claims.get(&self.admin_claim.0), &self.admin_claim.1);
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            .map(|exp| UNIX_EPOCH + Duration::from_secs_f64(exp.min(1e12)));
        // Accepted until `exp` plus the leeway, so kept that long too; but
        // `exp` is what the token says and what clients are told.
        let mut identity = Identity::new(user)
            .with_permissions(permissions)
            .with_admin(admin)
            .with_grace(self.leeway);
        if let Some(at) = expires_at {
            identity = identity.with_expiry(at);
        }
        Ok(identity.with_claims(claims))
    }

    fn validation(&self, algorithm: JwtAlgorithm) -> Validation {
        let mut v = Validation::new(algorithm.to_jwt());
        v.leeway = self.leeway.as_secs();
        v.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_owned()]);
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            required.insert("iss".to_owned());
        }
        if self.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
            required.insert("aud".to_owned());
        }
        v.required_spec_claims = required;
        v
    }

    fn rebuild(mut self) -> Self {
        let keys = std::mem::take(&mut self.keys);
        for (key, _) in keys {
            self = self.key(key);
        }
        self
    }
}

/// A refusal reason that says what was wrong with the token, and nothing
/// about the keys.
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::ExpiredSignature => "token expired".to_owned(),
        ErrorKind::ImmatureSignature => "token not yet valid".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidAlgorithm => "algorithm not allowed".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("invalid claim {claim}"),
        _ => "malformed token".to_owned(),
    }
}

impl Authenticator for JwtAuth {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        match request.token() {
            Some(token) => self.verify(token).map(Some),
            None => Ok(None),
        }
    }
}
