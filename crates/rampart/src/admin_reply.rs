//! Replies of the JSON management APIs on the admin listener (`/access/...`, `/vault/...`):
//! the refusal type every handler returns, JSON error bodies `{"error": "..."}`, the audited
//! 401 for callers without a credential, and request bodies parsed only once the caller is
//! known (the message never echoes the body).

use std::net::SocketAddr;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admin::AdminState;

/// A handler's answer.
pub(crate) type Reply = Result<Response, Refusal>;

/// A refused call's response (boxed: it is the large error side of every handler's result).
#[derive(Debug)]
pub(crate) struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A refusal with `status` and the JSON body `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Refusal {
    Refusal(Box::new(
        (status, axum::Json(json!({ "error": message.to_string() }))).into_response(),
    ))
}

/// The 401 for a caller without a valid credential (`message` says which are accepted),
/// recorded in the audit trail as a refused admin request on `path`.
pub(crate) fn unauthorized(
    state: &AdminState,
    client: SocketAddr,
    path: &str,
    message: &str,
) -> Refusal {
    crate::auditing::admin_denied(&state.auditor, client, path);
    Refusal(Box::new(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"rampart-admin\"")],
            axum::Json(json!({ "error": message })),
        )
            .into_response(),
    ))
}

/// The request's JSON body, read only once the caller is known: an unauthenticated call is a
/// 401 (audited), never a body error; a bad body is a 400 naming line and column only.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "the request body is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}
