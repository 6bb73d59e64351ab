//! A scripted browser for the sign-in pages: keeps cookies, follows redirects one by
//! one, reads forms' hidden fields, and stops at the client's redirect URI.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::TestServer;

/// A cookie-keeping HTTP client that submits the real forms.
pub struct Browser<'a> {
    pub app: &'a TestServer,
    cookies: BTreeMap<String, String>,
    /// Sent as `X-Forwarded-For`, as a proxy in front of the server would.
    forwarded_for: Option<String>,
}

/// A response as the browser saw it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of the hidden or prefilled input `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].replace("&#x2f;", "/").replace("&amp;", "&").replace("&#38;", "&"))
    }
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestServer) -> Self {
        Self { app, cookies: BTreeMap::new(), forwarded_for: None }
    }

    /// A browser behind a proxy that sends `X-Forwarded-For: chain`.
    pub fn forwarded_for(app: &'a TestServer, chain: &str) -> Self {
        Self { forwarded_for: Some(chain.to_owned()), ..Self::new(app) }
    }

    /// The same browser (its cookies) talking to another instance.
    pub fn moved_to<'b>(&self, app: &'b TestServer) -> Browser<'b> {
        Browser { app, cookies: self.cookies.clone(), forwarded_for: self.forwarded_for.clone() }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') { self.app.url(url) } else { url.to_owned() }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookie.is_empty() { request } else { request.header(COOKIE, cookie) };
        let request = match &self.forwarded_for {
            Some(chain) => request.header("x-forwarded-for", chain),
            None => request,
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers.get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Page { status, location, body, headers }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let request = self.app.http.get(self.absolute(url));
        self.send(request).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let request = self.app.http.post(self.absolute(url)).form(form);
        self.send(request).await
    }

    /// Opens `url` and follows redirects on this server.
    pub async fn open(&mut self, url: &str) -> Page {
        let page = self.get(url).await;
        self.follow(page).await
    }

    /// Follows redirects on this server until a page, or a redirect elsewhere.
    pub async fn follow(&mut self, mut page: Page) -> Page {
        while let Some(location) = page.location.clone() {
            if !(location.starts_with('/') || location.starts_with(&self.app.base)) {
                break;
            }
            page = self.get(&location).await;
        }
        page
    }

    /// Signs in on the login page `page` is showing.
    pub async fn sign_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        let csrf = page.input("csrf_token").expect("login form has a CSRF token");
        let mut form = vec![("csrf_token", csrf.as_str()), ("username", username), ("password", password)];
        let interaction = page.input("interaction");
        if let Some(interaction) = &interaction {
            form.push(("interaction", interaction));
        }
        let return_to = page.input("return_to");
        if let Some(return_to) = &return_to {
            form.push(("return_to", return_to));
        }
        let response = self.post("/login", &form).await;
        self.follow(response).await
    }

    /// Answers the consent page `page` is showing.
    pub async fn consent(&mut self, page: &Page, decision: &str) -> Page {
        let csrf = page.input("csrf_token").expect("consent form has a CSRF token");
        let interaction = page.input("interaction").expect("consent form names its interaction");
        let form =
            [("csrf_token", csrf.as_str()), ("interaction", interaction.as_str()), ("decision", decision)];
        let response = self.post("/consent", &form).await;
        self.follow(response).await
    }

    /// From an authorization URL to the client's redirect URI: signs in as `username`
    /// and allows whatever is asked. Returns the final redirect (to the client).
    pub async fn authorize(&mut self, url: &str, username: &str, password: &str) -> url::Url {
        let mut page = self.open(url).await;
        if page.body.contains("name=\"password\"") {
            page = self.sign_in(&page, username, password).await;
        }
        if page.body.contains("value=\"allow\"") {
            page = self.consent(&page, "allow").await;
        }
        let location =
            page.location.unwrap_or_else(|| panic!("no redirect to the client; page:\n{}", page.body));
        url::Url::parse(&location).unwrap()
    }
}

/// The value of query parameter `name` in `url`.
pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl Browser<'_> {
    /// The `Cookie` header this browser sends, for requests made beside it (races).
    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}
