//! `tessera bff` in a real browser (issue 17): headless Chromium loads a small SPA
//! served by the BFF from `static_dir`, clicks "Sign in", signs in and consents on
//! Tessera's pages, comes back, reads `/bff/user` with `fetch` and calls an API through
//! the BFF. The API receives the user's bearer token; the page, `document.cookie` and
//! the browser's storage hold none. The SPA is on `localhost`, Tessera on `127.0.0.1`:
//! two sites, as in a deployment, so the SameSite=Lax cookies cross a real site boundary.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use fantoccini::Locator;
use serde_json::json;
use tokio::net::TcpListener;

use crate::bff::{client_toml, start_bff_with};
use crate::chromium::{PAGE_WAIT, click_button, in_chromium, sign_in, wait_for_page};
use crate::support::{TestServer, temp_dir};

const INDEX: &str = r##"<!doctype html>
<html><head><title>SPA</title></head><body>
<h1 id="heading">Loading</h1>
<a id="login" href="/bff/login?returnUrl=/home">Sign in</a>
<a id="logout" href="#">Sign out</a>
<p>user <span id="user"></span></p>
<p>api <span id="api"></span></p>
<p>without X-CSRF <span id="nocsrf"></span></p>
<script src="/app.js"></script>
</body></html>
"##;

/// The SPA side as the README documents it: a fetch wrapper adding `X-CSRF: 1`.
const APP_JS: &str = r#"
async function bff(path, options = {}) {
  const headers = new Headers(options.headers);
  headers.set('X-CSRF', '1');
  return fetch(path, { ...options, headers, credentials: 'include' });
}
(async () => {
  const user = await bff('/bff/user');
  if (user.status !== 200) {
    document.getElementById('heading').textContent = 'Signed out';
    return;
  }
  const claims = await user.json();
  const value = (type) => (claims.find((c) => c.type === type) || {}).value;
  document.getElementById('user').textContent = value('sub');
  document.getElementById('logout').href = value('bff:logout_url');
  const api = await bff('/api/orders?page=2', { method: 'POST', body: 'from the page' });
  document.getElementById('api').textContent = api.status + ' ' + (await api.text());
  const plain = await fetch('/api/orders', { credentials: 'include' });
  document.getElementById('nocsrf').textContent = String(plain.status);
  document.getElementById('heading').textContent = 'Signed in';
})();
"#;

/// An API that keeps the `Authorization` header it received and answers without it.
async fn recording_api() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let record = record.clone();
        async move {
            let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
            let bearer = authorization.as_deref().is_some_and(|a| a.starts_with("Bearer "));
            record.lock().unwrap().extend(authorization);
            axum::Json(json!({ "bearer": bearer, "body": body, "cookie": headers.contains_key("cookie") }))
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn text_of(client: &fantoccini::Client, id: &str) -> String {
    client.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn chromium_signs_in_through_the_bff_and_the_page_holds_no_token() {
    in_chromium(|client| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let spa = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let app = TestServer::spawn_with(&client_toml(&spa)).await;
        let (api, seen) = recording_api().await;
        let dist = temp_dir("spa");
        std::fs::write(dist.join("index.html"), INDEX).unwrap();
        std::fs::write(dist.join("app.js"), APP_JS).unwrap();
        let extra = format!(
            "client_secret = \"spa-bff-secret\"\nstatic_dir = \"{}\"\nstorage = \"sqlite://bff.db\"\n\
             [[bff.apis]]\npath = \"/api\"\nupstream = \"{api}\"\ntoken = \"user\"\n",
            dist.display()
        );
        start_bff_with(listener, &spa, &app.issuer, app.clock.clone(), &extra).await;

        client.goto(&format!("{spa}/")).await.unwrap();
        wait_for_page(&client, "Signed out").await;
        client.find(Locator::Id("login")).await.unwrap().click().await.unwrap();
        wait_for_page(&client, "Sign in").await;
        assert!(client.current_url().await.unwrap().as_str().starts_with(&app.issuer));
        sign_in(&client, "alice", "alice-password-1").await;
        // offline_access is asked for: the BFF sends prompt=consent (OIDC Core §11).
        wait_for_page(&client, "Allow access?").await;
        click_button(&client, "Allow").await;

        wait_for_page(&client, "Signed in").await;
        let landed = client.current_url().await.unwrap();
        assert_eq!(landed.as_str(), format!("{spa}/home"), "back at the returnUrl");
        assert_eq!(text_of(&client, "user").await, "alice-sub");
        let api_answer = text_of(&client, "api").await;
        assert!(api_answer.starts_with("200 "), "{api_answer}");
        let echoed: serde_json::Value = serde_json::from_str(&api_answer[4..]).unwrap();
        assert_eq!(echoed, json!({ "bearer": true, "body": "from the page", "cookie": false }));
        assert_eq!(text_of(&client, "nocsrf").await, "401", "a call without X-CSRF: 1 is refused");

        let tokens = seen.lock().unwrap().clone();
        assert_eq!(tokens.len(), 1, "one call reached the API: {tokens:?}");
        let token = tokens[0].strip_prefix("Bearer ").unwrap().to_owned();
        assert_eq!(app.verify_jwt(&token).await["sub"], "alice-sub", "the user's access token");

        // Nothing the page's scripts can read holds the token, or any JWT.
        let readable = client
            .execute(
                "return [document.cookie, document.documentElement.outerHTML, \
                 JSON.stringify(Object.assign({}, localStorage)), \
                 JSON.stringify(Object.assign({}, sessionStorage))];",
                vec![],
            )
            .await
            .unwrap();
        let [cookie, html, local, session] =
            <[String; 4]>::try_from(serde_json::from_value::<Vec<String>>(readable).unwrap()).unwrap();
        assert_eq!(cookie, "", "the session cookie is HttpOnly and nothing else is set");
        for (what, text) in [("page", &html), ("localStorage", &local), ("sessionStorage", &session)] {
            assert!(!text.contains(&token) && !text.contains("eyJ"), "a token in the {what}: {text}");
        }
        // The browser holds the session cookie, with the attributes the issue asks for.
        let cookies = client.get_all_cookies().await.unwrap();
        let session_cookie = cookies.iter().find(|c| c.name() == "__Host-bff").expect("the session cookie");
        assert_eq!(session_cookie.http_only(), Some(true));
        assert_eq!(session_cookie.secure(), Some(true));
        assert!(!session_cookie.value().contains('.'), "an opaque id, not a token");

        // Sign out: the BFF ends the session and the provider's, then the app is back.
        client.find(Locator::Id("logout")).await.unwrap().click().await.unwrap();
        // Tessera asks before it ends its own session (RP-Initiated Logout §2).
        wait_for_page(&client, "Sign out").await;
        click_button(&client, "Sign out").await;
        let out = client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::XPath("//h1[normalize-space()='Signed out']"))
            .await;
        if out.is_err() {
            panic!("not back on the app after sign-out: {}", client.source().await.unwrap_or_default());
        }
        assert_eq!(client.current_url().await.unwrap().as_str(), format!("{spa}/"));
        client.goto(&format!("{spa}/home")).await.unwrap();
        wait_for_page(&client, "Signed out").await;
        app.stop().await;
    })
    .await;
}
