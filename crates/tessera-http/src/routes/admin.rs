//! `/admin`: clients and users, as JSON, for a caller holding an access token of this
//! server with the scope `tessera:admin` for the audience `tessera-admin` (a
//! client-credentials token; sent as `Bearer`, or `DPoP` with a proof when the token is
//! bound). No cookies, no Basic authentication. `/admin/openapi.json` describes it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_core::admin::{self, AdminError};
use tessera_core::userinfo::Presented;
use tessera_core::{ErrorCode, OAuthError};

use crate::AppState;
use crate::extract::{ClientTls, dpop_proof};

/// A caller the admin API admits: `Bearer` or `DPoP` (with its proof for this
/// request), checked before the handler runs; a refusal is the handler's answer.
pub(super) struct Admitted;

impl axum::extract::FromRequestParts<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, Response> {
        let tls = ClientTls::from_request_parts(parts, app).await.map_err(IntoResponse::into_response)?;
        let on_admin_listener = parts.extensions.get::<super::AdminListener>().is_some();
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
        caller(app, &tls, &parts.headers, &parts.method, &uri, on_admin_listener)
            .await
            .map(|()| Self)
            .map_err(crate::error::admin_response)
    }
}

/// The caller, checked.
async fn caller(
    app: &AppState,
    tls: &ClientTls,
    headers: &HeaderMap,
    method: &Method,
    uri: &axum::http::Uri,
    on_admin_listener: bool,
) -> Result<(), AdminError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    let Some((scheme, token)) = value.and_then(|value| value.split_once(' ')) else {
        return Err(OAuthError::invalid_token("an admin token is needed (Authorization: Bearer)").into());
    };
    let token = token.trim();
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(OAuthError::invalid_token("Bearer or DPoP tokens only").into());
    }
    // RFC 9449 §4.3: the proof names the URL the request was sent to: on the admin
    // listener that is its own address, as the caller reached it.
    let url = if on_admin_listener {
        let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or_default();
        format!("http://{host}{}", uri.path())
    } else {
        tls.endpoint(&app.settings, uri.path().strip_prefix(app.base_path.as_str()).unwrap_or(uri.path()))
    };
    let proof = match dpop_proof(headers, method.as_str(), &url)? {
        Some(proof) if dpop => Some(proof),
        None if dpop => return Err(OAuthError::new(ErrorCode::InvalidDpopProof, "missing DPoP proof").into()),
        _ => None,
    };
    let presented = Presented { token, dpop: proof.as_ref(), certificate: tls.certificate.as_ref() };
    admin::authorize(app, Some(presented)).await?;
    Ok(())
}

/// A JSON body, or the field error saying it is not one.
fn json_body(body: &Bytes) -> Result<Value, AdminError> {
    serde_json::from_slice(body)
        .map_err(|error| AdminError::Invalid(vec![(String::new(), format!("not JSON: {error}"))]))
}

/// A client given with the keys of a `[[clients]]` table, checked by the file's rules.
fn client_body(app: &AppState, body: &Bytes) -> Result<tessera_core::model::Client, AdminError> {
    let value = json_body(body)?;
    tessera_config::client_from_json(value, app.catalog.resources(), &app.settings.signing.algorithms)
        .map_err(AdminError::Invalid)
}

fn ok(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// The handler's answer, or its error as the admin API shapes errors.
async fn answer(work: impl std::future::Future<Output = Result<Response, AdminError>>) -> Response {
    work.await.unwrap_or_else(crate::error::admin_response)
}

pub(super) async fn list_clients(State(app): State<AppState>, _: Admitted) -> Response {
    answer(async { admin::list_clients(&app).await.map(|body| ok(StatusCode::OK, body)) }).await
}

pub(super) async fn create_client(State(app): State<AppState>, _: Admitted, body: Bytes) -> Response {
    answer(async {
        let client = client_body(&app, &body)?;
        admin::create_client(&app, client).await.map(|body| ok(StatusCode::CREATED, body))
    })
    .await
}

pub(super) async fn read_client(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    _: Admitted,
) -> Response {
    answer(async { admin::read_client(&app, &client_id).await.map(|body| ok(StatusCode::OK, body)) }).await
}

pub(super) async fn replace_client(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    _: Admitted,
    body: Bytes,
) -> Response {
    answer(async {
        let client = client_body(&app, &body)?;
        admin::replace_client(&app, &client_id, client).await.map(|body| ok(StatusCode::OK, body))
    })
    .await
}

pub(super) async fn delete_client(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    _: Admitted,
) -> Response {
    answer(async {
        admin::delete_client(&app, &client_id).await.map(|()| StatusCode::NO_CONTENT.into_response())
    })
    .await
}

pub(super) async fn rotate_secret(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    _: Admitted,
) -> Response {
    answer(async { admin::rotate_secret(&app, &client_id).await.map(|body| ok(StatusCode::OK, body)) }).await
}

pub(super) async fn list_users(State(app): State<AppState>, _: Admitted) -> Response {
    answer(async { admin::list_users(&app).await.map(|body| ok(StatusCode::OK, body)) }).await
}

pub(super) async fn create_user(State(app): State<AppState>, _: Admitted, body: Bytes) -> Response {
    answer(async {
        let body = json_body(&body)?;
        admin::create_user(&app, &body).await.map(|body| ok(StatusCode::CREATED, body))
    })
    .await
}

pub(super) async fn set_password(
    State(app): State<AppState>,
    Path(username): Path<String>,
    _: Admitted,
    body: Bytes,
) -> Response {
    answer(async {
        let body = json_body(&body)?;
        admin::set_password(&app, &username, &body).await.map(|body| ok(StatusCode::OK, body))
    })
    .await
}

pub(super) async fn disable_user(
    State(app): State<AppState>,
    Path(username): Path<String>,
    _: Admitted,
) -> Response {
    answer(async { admin::set_disabled(&app, &username, true).await.map(|body| ok(StatusCode::OK, body)) })
        .await
}

pub(super) async fn enable_user(
    State(app): State<AppState>,
    Path(username): Path<String>,
    _: Admitted,
) -> Response {
    answer(async { admin::set_disabled(&app, &username, false).await.map(|body| ok(StatusCode::OK, body)) })
        .await
}

pub(super) async fn delete_user(
    State(app): State<AppState>,
    Path(username): Path<String>,
    _: Admitted,
) -> Response {
    answer(async {
        admin::delete_user(&app, &username).await.map(|()| StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// The OpenAPI 3.1 description of this API.
pub(super) async fn openapi(State(app): State<AppState>) -> Response {
    let mut document: Value =
        serde_json::from_str(include_str!("../../assets/admin-openapi.json")).unwrap_or_default();
    document["servers"] = serde_json::json!([{ "url": app.settings.issuer }]);
    ok(StatusCode::OK, document)
}
