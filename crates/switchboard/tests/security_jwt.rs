//! JWT verification: every supported algorithm, key selection by `kid`,
//! JWKS, and the attacks a JWT verifier must refuse.

mod security_common;

use http::StatusCode;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use security_common::*;
use serde_json::{Value, json};
use switchboard::security::{IsAuthenticated, JwtAlgorithm, JwtAuth, JwtKey, Security};
use switchboard::{RouteConfig, ServerConfig, TestClient};

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "switchboard";

/// RS256 under kid `k1`, with an issuer and an audience.
fn rsa_auth() -> JwtAuth {
    JwtAuth::new()
        .key(
            JwtKey::rsa_pem(JwtAlgorithm::RS256, RSA_PUBLIC)
                .unwrap()
                .with_kid("k1"),
        )
        .issuer(ISSUER)
        .audience(AUDIENCE)
}

fn good_claims() -> Value {
    json!({ "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600 })
}

fn with(mut claims: Value, changes: Value) -> Value {
    let Value::Object(changes) = changes else {
        panic!("changes are an object")
    };
    for (k, v) in changes {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(&k);
        } else {
            claims[k] = v;
        }
    }
    claims
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Every attack goes through the real handshake: exact status and body,
/// and the handler never runs.
async fn assert_refused(tokens: &[(&str, String, &str)]) {
    let security = Security::new()
        .authenticate(rsa_auth())
        .guard(IsAuthenticated);
    let (app, calls) = app(
        ServerConfig::default(),
        RouteConfig::default().with_security(security),
    );
    let client = TestClient::new(app);
    for (attack, token, reason) in tokens {
        let body = format!("Invalid token: {reason}");
        match client.request("/ws").bearer(token).connect().await {
            Err(switchboard::TestError::Rejected { status, reason, .. }) => {
                assert_eq!(
                    (status, reason.as_str()),
                    (StatusCode::UNAUTHORIZED, body.as_str()),
                    "{attack}"
                );
            }
            other => panic!(
                "{attack}: expected 401 {body:?}, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    assert_eq!(calls.get(), 0);
    // The same route accepts a good token.
    let (report, _ws) = accepted(
        client
            .request("/ws")
            .bearer(&rs256(&good_claims(), Some("k1"))),
    )
    .await;
    assert_eq!(report["user"], "alice");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let claims = good_claims();
    assert_refused(&[
        (
            "none",
            raw_token(&json!({ "alg": "none", "typ": "JWT" }), &claims, b""),
            "malformed token",
        ),
        (
            "None",
            raw_token(&json!({ "alg": "None", "kid": "k1" }), &claims, b""),
            "malformed token",
        ),
        (
            "none with a signature",
            raw_token(&json!({ "alg": "none", "kid": "k1" }), &claims, b"sig"),
            "malformed token",
        ),
    ])
    .await;
}

#[tokio::test]
async fn an_hmac_token_keyed_with_the_rsa_public_key_is_refused() {
    // The classic confusion: HS256 "signed" with the server's public key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".to_owned());
    let forged = sign_with(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    );
    let mut no_kid = Header::new(Algorithm::HS256);
    no_kid.kid = None;
    let forged_no_kid = sign_with(
        &no_kid,
        &good_claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    );
    // And PS256 (same family) is not RS256 either: algorithms are pinned.
    let mut ps = Header::new(Algorithm::PS256);
    ps.kid = Some("k1".to_owned());
    let ps256 = sign_with(
        &ps,
        &good_claims(),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    );
    assert_refused(&[
        ("HS256 with the public key", forged, "algorithm not allowed"),
        ("HS256 without kid", forged_no_kid, "missing key id"),
        ("PS256 with the RS256 key", ps256, "algorithm not allowed"),
    ])
    .await;
}

#[tokio::test]
async fn time_and_audience_claims_are_enforced() {
    let c = good_claims();
    let sign = |claims: Value| rs256(&claims, Some("k1"));
    assert_refused(&[
        (
            "expired",
            sign(with(c.clone(), json!({ "exp": now() - 3600 }))),
            "token expired",
        ),
        (
            "no exp",
            sign(with(c.clone(), json!({ "exp": null }))),
            "missing claim exp",
        ),
        (
            "not yet valid",
            sign(with(c.clone(), json!({ "nbf": now() + 3600 }))),
            "token not yet valid",
        ),
        (
            "wrong iss",
            sign(with(c.clone(), json!({ "iss": "https://evil.example" }))),
            "wrong issuer",
        ),
        (
            "no iss",
            sign(with(c.clone(), json!({ "iss": null }))),
            "missing claim iss",
        ),
        (
            "wrong aud",
            sign(with(c.clone(), json!({ "aud": "another-service" }))),
            "wrong audience",
        ),
        (
            "no aud",
            sign(with(c.clone(), json!({ "aud": null }))),
            "missing claim aud",
        ),
        (
            "no sub",
            sign(with(c.clone(), json!({ "sub": null }))),
            "missing claim sub",
        ),
        // jsonwebtoken counts an exp it cannot read as a missing one.
        (
            "exp as text",
            sign(with(c, json!({ "exp": "tomorrow" }))),
            "missing claim exp",
        ),
    ])
    .await;
}

#[tokio::test]
async fn leeway_tolerates_small_clock_skew() {
    let auth = rsa_auth(); // 60 s by default
    let slightly_expired = rs256(
        &with(good_claims(), json!({ "exp": now() - 10 })),
        Some("k1"),
    );
    assert!(auth.verify(&slightly_expired).is_ok());
    let strict = auth.leeway(std::time::Duration::ZERO);
    assert!(strict.verify(&slightly_expired).is_err());
}

#[tokio::test]
async fn tampered_and_malformed_tokens_are_refused() {
    let token = rs256(&good_claims(), Some("k1"));
    let parts: Vec<&str> = token.split('.').collect();
    // The payload changed, the signature kept.
    let elevated = b64(with(good_claims(), json!({ "sub": "root" })).to_string());
    let payload_swapped = format!("{}.{}.{}", parts[0], elevated, parts[2]);
    // One signature character changed (in the middle: the last one may
    // only hold padding bits).
    let mut signature = parts[2].to_owned();
    let mid = signature.len() / 2;
    let flipped = if &signature[mid..=mid] == "A" {
        "B"
    } else {
        "A"
    };
    signature.replace_range(mid..=mid, flipped);
    let signature_flipped = format!("{}.{}.{}", parts[0], parts[1], signature);
    let truncated = format!("{}.{}.", parts[0], parts[1]);
    // Signed by another RSA key under the same kid.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".to_owned());
    let other_key = sign_with(
        &header,
        &good_claims(),
        &EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap(),
    );
    assert_refused(&[
        ("payload swapped", payload_swapped, "bad signature"),
        ("signature flipped", signature_flipped, "bad signature"),
        ("signature removed", truncated, "bad signature"),
        ("another key", other_key, "bad signature"),
        (
            "two parts",
            format!("{}.{}", parts[0], parts[1]),
            "malformed token",
        ),
        ("four parts", format!("{token}.x"), "malformed token"),
        ("not base64", "%%%.%%%.%%%".to_owned(), "malformed token"),
        (
            "not json",
            format!("{}.{}.{}", b64("nope"), parts[1], parts[2]),
            "malformed token",
        ),
        ("plain text", "hello".to_owned(), "malformed token"),
    ])
    .await;
}

#[tokio::test]
async fn keys_are_chosen_by_kid() {
    let mut unknown = Header::new(Algorithm::RS256);
    unknown.kid = Some("k2".to_owned());
    let unknown_kid = sign_with(
        &unknown,
        &good_claims(),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    );
    // The attacker embeds its own key in the header: it is never used.
    let mut injected = Header::new(Algorithm::RS256);
    injected.kid = Some("k1".to_owned());
    let attacker = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap();
    injected.jwk = Some(Jwk::from_encoding_key(&attacker, Algorithm::RS256).unwrap());
    let jwk_injected = sign_with(&injected, &good_claims(), &attacker);
    assert_refused(&[
        ("unknown kid", unknown_kid, "unknown key id"),
        ("no kid", rs256(&good_claims(), None), "missing key id"),
        ("embedded jwk", jwk_injected, "bad signature"),
    ])
    .await;
}

fn token(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    sign_with(&header, &claims("kim"), key)
}

#[test]
fn every_algorithm_verifies_with_its_pinned_key_only() {
    let hs384 = "an HS384 test secret that is at least 48 bytes long";
    let hs512 = "an HS512 test secret that is at least sixty-four bytes long, yes!";
    let rsa = || EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let cases = [
        (
            JwtAlgorithm::HS256,
            Algorithm::HS256,
            JwtKey::hmac(JwtAlgorithm::HS256, SECRET).unwrap(),
            EncodingKey::from_secret(SECRET.as_bytes()),
        ),
        (
            JwtAlgorithm::HS384,
            Algorithm::HS384,
            JwtKey::hmac(JwtAlgorithm::HS384, hs384).unwrap(),
            EncodingKey::from_secret(hs384.as_bytes()),
        ),
        (
            JwtAlgorithm::HS512,
            Algorithm::HS512,
            JwtKey::hmac(JwtAlgorithm::HS512, hs512).unwrap(),
            EncodingKey::from_secret(hs512.as_bytes()),
        ),
        (
            JwtAlgorithm::RS256,
            Algorithm::RS256,
            JwtKey::rsa_pem(JwtAlgorithm::RS256, RSA_PUBLIC).unwrap(),
            rsa(),
        ),
        (
            JwtAlgorithm::RS384,
            Algorithm::RS384,
            JwtKey::rsa_pem(JwtAlgorithm::RS384, RSA_PUBLIC).unwrap(),
            rsa(),
        ),
        (
            JwtAlgorithm::RS512,
            Algorithm::RS512,
            JwtKey::rsa_pem(JwtAlgorithm::RS512, RSA_PUBLIC).unwrap(),
            rsa(),
        ),
        (
            JwtAlgorithm::PS256,
            Algorithm::PS256,
            JwtKey::rsa_pem(JwtAlgorithm::PS256, RSA_PUBLIC).unwrap(),
            rsa(),
        ),
        (
            JwtAlgorithm::PS384,
            Algorithm::PS384,
            JwtKey::rsa_pem(JwtAlgorithm::PS384, RSA_PUBLIC).unwrap(),
            rsa(),
        ),
        (
            JwtAlgorithm::PS512,
            Algorithm::PS512,
            JwtKey::rsa_pem(JwtAlgorithm::PS512, RSA_PUBLIC).unwrap(),
            rsa(),
        ),
        (
            JwtAlgorithm::ES256,
            Algorithm::ES256,
            JwtKey::ec_pem(JwtAlgorithm::ES256, EC256_PUBLIC).unwrap(),
            EncodingKey::from_ec_pem(EC256_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            JwtAlgorithm::ES384,
            Algorithm::ES384,
            JwtKey::ec_pem(JwtAlgorithm::ES384, EC384_PUBLIC).unwrap(),
            EncodingKey::from_ec_pem(EC384_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            JwtAlgorithm::EdDSA,
            Algorithm::EdDSA,
            JwtKey::ed_pem(ED_PUBLIC).unwrap(),
            EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        ),
    ];
    for (ours, alg, key, signing) in &cases {
        assert_eq!(key.algorithm(), *ours);
        let auth = JwtAuth::new().key(key.clone());
        let identity = auth
            .verify(&token(*alg, signing, None))
            .unwrap_or_else(|e| panic!("{ours:?}: {e}"));
        assert_eq!(identity.user_id().as_str(), "kim");
        // Every other algorithm's token is refused by this key.
        for (other, other_alg, _, other_signing) in &cases {
            if other != ours {
                let refused = auth.verify(&token(*other_alg, other_signing, None));
                assert!(refused.is_err(), "{ours:?} key accepted a {other:?} token");
            }
        }
    }
}

#[test]
fn keys_refuse_algorithms_of_another_family_and_short_secrets() {
    assert!(JwtKey::rsa_pem(JwtAlgorithm::HS256, RSA_PUBLIC).is_err());
    assert!(JwtKey::ec_pem(JwtAlgorithm::RS256, EC256_PUBLIC).is_err());
    assert!(JwtKey::hmac(JwtAlgorithm::RS256, SECRET).is_err());
    assert!(JwtKey::rsa_pem(JwtAlgorithm::RS256, "not a pem").is_err());
    let err = JwtKey::hmac(JwtAlgorithm::HS256, "short").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: a HS256 secret needs at least 32 bytes, got 5"
    );
    assert!(JwtKey::hmac(JwtAlgorithm::HS512, SECRET).is_err());
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

#[test]
fn jwks_keys_are_pinned_and_chosen_by_kid() {
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(EC256_PRIVATE.as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let mut rsa_no_alg = jwk(&rsa, Algorithm::RS256, "rsa-default");
    rsa_no_alg.as_object_mut().unwrap().remove("alg");
    let mut rsa_claims_hs = jwk(&rsa, Algorithm::RS256, "rsa-as-hmac");
    rsa_claims_hs["alg"] = json!("HS256");
    let set = json!({ "keys": [
        jwk(&rsa, Algorithm::RS256, "rsa"),
        jwk(&ec, Algorithm::ES256, "ec"),
        jwk(&ed, Algorithm::EdDSA, "ed"),
        rsa_no_alg,
        rsa_claims_hs,
        { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
    ]});
    let auth = JwtAuth::new().jwks(&set.to_string()).unwrap();
    for (alg, key, kid) in [
        (Algorithm::RS256, &rsa, "rsa"),
        (Algorithm::ES256, &ec, "ec"),
        (Algorithm::EdDSA, &ed, "ed"),
        (Algorithm::RS256, &rsa, "rsa-default"),
    ] {
        auth.verify(&token(alg, key, Some(kid)))
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
    }
    let reason = |t: String| match auth.verify(&t) {
        Err(switchboard::security::AuthError::InvalidToken(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // A key without `alg` is pinned to its type's usual one.
    assert_eq!(
        reason(token(Algorithm::PS256, &rsa, Some("rsa-default"))),
        "algorithm not allowed"
    );
    // The RSA key whose JWK claims HS256 was skipped, not used as a secret.
    let rsa_pub_secret = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    assert_eq!(
        reason(token(
            Algorithm::HS256,
            &rsa_pub_secret,
            Some("rsa-as-hmac")
        )),
        "unknown key id"
    );
    assert_eq!(
        reason(token(Algorithm::ES256, &ec, Some("rsa"))),
        "algorithm not allowed"
    );
    assert_eq!(
        reason(token(Algorithm::RS256, &rsa, Some("enc"))),
        "unknown key id"
    );

    let empty: JwkSet = serde_json::from_value(json!({ "keys": [] })).unwrap();
    assert!(
        JwtAuth::new()
            .jwks(&serde_json::to_string(&empty).unwrap())
            .is_err()
    );
    assert!(JwtAuth::new().jwks("{ not json").is_err());
}

#[test]
fn jwks_files_are_read() {
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let path = std::env::temp_dir().join(format!("switchboard-jwks-{}.json", std::process::id()));
    std::fs::write(
        &path,
        json!({ "keys": [jwk(&rsa, Algorithm::RS256, "file")] }).to_string(),
    )
    .unwrap();
    let auth = JwtAuth::new().jwks_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(
        auth.verify(&token(Algorithm::RS256, &rsa, Some("file")))
            .is_ok()
    );
    assert!(JwtAuth::new().jwks_file("/nonexistent/jwks.json").is_err());
}
