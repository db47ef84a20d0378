//! Who is asking: with `AUTH_JWT_SECRET` set, buyers present an HS256 JWT and
//! the user is its `sub`; without it, buyers are anonymous (or name a
//! `user_id` in the body, which nothing checks).
//!
//! Verification is `jsonwebtoken`'s, pinned to HS256 with `exp` and `sub`
//! required and no leeway: `alg: none`, HS512, RS256 and the rest are refused
//! by the algorithm check before any signature is looked at.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The verifier for one secret, built once at start-up.
pub struct Identity {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Identity {
    pub fn new(secret: &str) -> Identity {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        Identity {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The user named by an `Authorization: Bearer <JWT>` header, or why not.
    pub fn user(&self, authorization: Option<&[u8]>) -> Result<String, String> {
        let header = authorization.ok_or("missing Authorization: Bearer <JWT>")?;
        let token = header
            .strip_prefix(b"Bearer ")
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or("the Authorization header is not Bearer <JWT>")?;
        let data = decode::<Claims>(token.trim(), &self.key, &self.validation)
            .map_err(|e| format!("the bearer token was refused: {e}"))?;
        if data.claims.sub.is_empty() {
            return Err("the token's sub is empty".to_owned());
        }
        Ok(data.claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn later() -> u64 {
        jsonwebtoken::get_current_timestamp() + 600
    }

    #[test]
    fn only_hs256_with_exp_and_sub_from_our_secret() {
        let id = Identity::new("s3cret");
        let bearer = |t: String| format!("Bearer {t}").into_bytes();
        let good = token(
            Algorithm::HS256,
            "s3cret",
            json!({"sub": "u-1", "exp": later()}),
        );
        assert_eq!(id.user(Some(&bearer(good))), Ok("u-1".to_owned()));
        for bad in [
            token(
                Algorithm::HS256,
                "other",
                json!({"sub": "u-1", "exp": later()}),
            ),
            token(
                Algorithm::HS512,
                "s3cret",
                json!({"sub": "u-1", "exp": later()}),
            ),
            token(Algorithm::HS256, "s3cret", json!({"sub": "u-1"})),
            token(Algorithm::HS256, "s3cret", json!({"exp": later()})),
            token(
                Algorithm::HS256,
                "s3cret",
                json!({"sub": "", "exp": later()}),
            ),
            token(Algorithm::HS256, "s3cret", json!({"sub": "u", "exp": 1000})),
            // alg: none, unsigned.
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1LTEiLCJleHAiOjQxMDI0NDQ4MDB9."
                .to_owned(),
            "not.a.jwt".to_owned(),
        ] {
            assert!(id.user(Some(&bearer(bad.clone()))).is_err(), "{bad}");
        }
        assert!(id.user(None).is_err());
        assert!(id.user(Some(b"Basic abc")).is_err());
    }
}
