//! Authentication: `Authorization: Bearer <JWT>` or `X-API-Key`, both resolving
//! to a company and a role. Every handler gets a [`Caller`] and scopes to it.

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::{config::Config, error::ApiError, state::AppState};

/// Roles, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the company.
    Admin,
    /// Operates the network: writes to infrastructure.
    Operator,
    /// Reads only.
    Viewer,
    /// A driver: starts, stops and reads its own sessions, pays for itself;
    /// the token's `sub` is its customer id.
    Driver,
    /// A CPMS integration: starts ad-hoc charges and reports their progress
    /// and completion.
    Service,
}

impl Role {
    /// Wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Driver => "driver",
            Self::Service => "service",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Admin, Self::Operator, Self::Viewer, Self::Driver, Self::Service].into_iter().find(|r| r.as_str() == raw)
    }
}

/// JWT claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject (user id).
    pub sub: String,
    /// Company id.
    pub company: Uuid,
    /// The caller's role: the lowercase `role` claim (`admin`, `operator`, `viewer`, …).
    pub role: Role,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issuer; checked when `CHARGELEDGER_JWT_ISSUER` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience; checked when `CHARGELEDGER_JWT_AUDIENCE` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The company every read and write is scoped to.
    pub company_id: Uuid,
    /// The role.
    pub role: Role,
    /// For event metadata: `user:<sub>` or `api-key:<id>`.
    pub actor: String,
    /// The token's `sub` (none for API keys).
    pub subject: Option<String>,
}

impl Caller {
    /// Refuses (403) roles that are not admin or operator. Routes are already
    /// checked by [`crate::policy::authorize`]; handlers keep this as a second line.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin | Role::Operator => Ok(()),
            role => Err(ApiError::Forbidden(format!("role {} may not do this", role.as_str()))),
        }
    }

    /// Who the caller is for idempotency keys and rate limits: the role and
    /// the actor, so a driver whose customer id equals an operator's `sub`
    /// never shares the operator's stored responses or request budget.
    pub fn scope(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.actor)
    }

    /// The customer whose resources alone this caller may see: the `sub` of a
    /// driver. `None` for every other role (they see the whole company).
    pub fn owner(&self) -> Option<&str> {
        match self.role {
            // A driver always has a subject: driver API keys are refused.
            Role::Driver => Some(self.subject.as_deref().unwrap_or("")),
            _ => None,
        }
    }

    /// 404 (never 403: no existence oracle) when a driver asks for a resource
    /// of another customer; `owner` is the resource's customer id.
    pub fn must_own(&self, owner: Option<&str>, what: &str) -> Result<(), ApiError> {
        match self.owner() {
            Some(me) if owner != Some(me) => Err(ApiError::NotFound(format!("{what} not found"))),
            _ => Ok(()),
        }
    }
}

/// Verifies tokens: HS256 with the secret, RS256 with the public key if configured.
#[derive(Clone)]
pub struct TokenVerifier {
    hs256: DecodingKey,
    rs256: Option<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("rs256", &self.rs256.is_some()).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// From configuration.
    pub fn new(config: &Config) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            hs256: DecodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes()),
            rs256: config
                .jwt_public_key_pem
                .as_deref()
                .map(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()))
                .transpose()?,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// Verifies a token and returns its claims. Only HS256 and (if configured)
    /// RS256 are accepted: `alg: none` and anything else is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| ApiError::Unauthorized("malformed bearer token".into()))?;
        let key = match header.alg {
            Algorithm::HS256 => &self.hs256,
            Algorithm::RS256 => {
                self.rs256.as_ref().ok_or_else(|| ApiError::Unauthorized("RS256 tokens are not configured".into()))?
            }
            other => return Err(ApiError::Unauthorized(format!("token algorithm {other:?} is not accepted"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        // When configured, `iss` and `aud` are required and must match.
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        decode::<Claims>(token, key, &validation).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            ApiError::Unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "token has expired".into(),
                ErrorKind::InvalidSignature => "token signature is invalid".into(),
                ErrorKind::InvalidIssuer => "token issuer is not accepted".into(),
                ErrorKind::InvalidAudience => "token audience is not accepted".into(),
                _ => format!("token is invalid: {e}"),
            })
        })
    }
}

/// Mints an HS256 token (the `chargeledger token` subcommand, and tests).
pub fn mint_token(
    config: &Config,
    sub: &str,
    company: Uuid,
    role: Role,
    ttl: chrono::Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        company,
        role,
        iat: now,
        exp: now + ttl.num_seconds(),
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone(),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes()),
    )
}

fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates an API key; returns (id, key). The key is shown once and stored hashed.
pub async fn create_api_key(
    pool: &PgPool,
    company: Uuid,
    role: Role,
    name: &str,
) -> Result<(Uuid, String), sqlx::Error> {
    if role == Role::Driver {
        // A driver's identity (its customer id) is the `sub` of its token.
        return Err(sqlx::Error::InvalidArgument("drivers sign in with tokens, not API keys".into()));
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = format!("clk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO api_keys (id, company_id, role, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(company)
        .bind(role.as_str())
        .bind(name)
        .bind(&key[..12])
        .bind(key_hash(&key))
        .execute(pool)
        .await?;
    Ok((id, key))
}

async fn caller_from_api_key(pool: &PgPool, key: &str) -> Result<Caller, ApiError> {
    let row = sqlx::query("SELECT id, company_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash(key))
        .fetch_optional(pool)
        .await?;
    let row = row.ok_or_else(|| ApiError::Unauthorized("API key is not valid".into()))?;
    let id: Uuid = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal(format!("api key {id} has unknown role {role}")))?;
    if role == Role::Driver {
        return Err(ApiError::Unauthorized(
            "a driver signs in with a token whose sub is its customer id, not an API key".into(),
        ));
    }
    Ok(Caller { company_id: row.try_get("company_id")?, role, actor: format!("api-key:{id}"), subject: None })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Already authenticated by the route's authorization layer.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let auth = auth.to_str().map_err(|_| ApiError::Unauthorized("Authorization header is not text".into()))?;
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
                .ok_or_else(|| ApiError::Unauthorized("Authorization must be 'Bearer <token>'".into()))?;
            let claims = state.verifier.verify(token.trim())?;
            if claims.role == Role::Driver && claims.sub.is_empty() {
                return Err(ApiError::Unauthorized("a driver's token needs its customer id as sub".into()));
            }
            return Ok(Caller {
                company_id: claims.company,
                role: claims.role,
                actor: format!("user:{}", claims.sub),
                subject: Some(claims.sub),
            });
        }
        if let Some(key) = parts.headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| ApiError::Unauthorized("X-API-Key is not text".into()))?;
            return caller_from_api_key(&state.pool, key.trim()).await;
        }
        Err(ApiError::Unauthorized("send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'".into()))
    }
}
