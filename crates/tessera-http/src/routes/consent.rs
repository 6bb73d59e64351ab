//! `GET|POST /consent`: the user grants the requested scopes to a client, or denies.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::{authorize, sign_in};

use super::authorize::{Interaction, failed, proceed};
use super::interaction_pages::{expired, load_bound};
use crate::AppState;
use crate::extract::cookies::SESSION_COOKIE;
use crate::extract::{OAuthForm, parse_form};
use crate::pages::{ConsentPage, Unvetted, html, see_other};

pub(super) async fn consent_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let Some(id) = params.get("interaction") else { return expired(&app) };
    let request = match load_bound(&app, &headers, id).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let Ok(Some(session)) = sign_in::session(&app, app.read_cookie(&headers, SESSION_COOKIE)).await else {
        return see_other(&format!("{}?interaction={id}", app.link("/login")), Vec::new());
    };
    let client = app.clients.get(&request.client_id, app.clock.now()).await;
    let client = client.ok().flatten();
    let client_name =
        client.as_ref().map_or_else(|| request.client_id.to_string(), |client| client.client_name.clone());
    let host_of = |url: &str| url::Url::parse(url).ok().and_then(|url| url.host_str().map(str::to_owned));
    let unvetted = client
        .filter(|client| client.from_metadata_document || client.registration.is_some())
        .map(|client| Unvetted {
            client_host: if client.from_metadata_document {
                host_of(client.client_id.as_str())
            } else {
                None
            },
            redirect_host: host_of(&request.redirect_uri).unwrap_or_else(|| request.redirect_uri.clone()),
        });
    let scopes = request.scopes.iter().map(|scope| app.catalog.display_name(scope).to_owned()).collect();
    let csrf = app.csrf(&headers);
    let page = ConsentPage {
        base: app.base(),
        csrf_token: csrf.token,
        interaction: id.to_owned(),
        client_name,
        scopes,
        username: session.username,
        unvetted,
    };
    html(StatusCode::OK, &page, csrf.set_cookie.into_iter().collect(), None)
}

pub(super) async fn consent_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let Some(id) = form.get("interaction") else { return expired(&app) };
    let sign_in_at = format!("{}?interaction={id}", app.link("/login"));
    let session = match super::signed_in_form(&app, &headers, &form, &sign_in_at).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let mut request = match load_bound(&app, &headers, id).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if form.get("decision") != Some("allow") {
        return match authorize::finish_interaction(&app, id).await {
            Ok(Some(request)) => failed(&app, authorize::denied(&app, &request)),
            Ok(None) => expired(&app),
            Err(error) => crate::error::page(&app, &error),
        };
    }
    if let Err(error) = authorize::record_consent(&app, &session, &request).await {
        return crate::error::page(&app, &error);
    }
    request.consented = true;
    proceed(&app, &headers, request, Interaction::Open(id)).await
}
