//! Mutual TLS (RFC 8705): `tls_client_auth` and `self_signed_tls_client_auth` on the
//! TLS listener, certificate-bound access tokens (`cnf.x5t#S256`) checked at
//! userinfo, introspection and by the resource-server helper, discovery's aliases,
//! and certificates forwarded by a trusted TLS-terminating proxy. Every certificate
//! is made here with rcgen; the clients are reqwest over rustls.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use serde_json::Value;
use tessera_resource::{Authenticated, PeerCertificate, Rejection, Verifier};

use crate::browser::{Browser, query};
use crate::code_flow::authorization_url;
use crate::support::TestServer;

/// A certificate and its private key, PEM.
struct Issued {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Issued {
    /// RFC 8705 §3.1: base64url SHA-256 of the DER certificate.
    fn thumbprint(&self) -> String {
        tessera_core::secret::b64url(tessera_core::secret::sha256(&self.der))
    }

    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert_pem, self.key_pem).as_bytes()).unwrap()
    }
}

/// A test PKI: one CA that issues the server's certificate and clients' certificates.
struct Pki {
    ca: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "Tessera Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self { ca: Issuer::new(params, key), ca_pem }
    }

    fn server(&self) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }

    /// A client certificate with subject `CN=common_name,O=organization`.
    fn client(&self, common_name: &str, organization: &str, expired: bool) -> Issued {
        let params = client_params(common_name, organization, expired);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }

    /// A TLS client that trusts the test CA and presents `identity`.
    fn client_http(&self, identity: Option<&Issued>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap());
        if let Some(identity) = identity {
            builder = builder.identity(identity.identity());
        }
        builder.build().unwrap()
    }
}

fn client_params(common_name: &str, organization: &str, expired: bool) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    // DER order, root first: the RFC 4514 string reads `CN=…,O=…`.
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, organization);
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    params
}

/// A certificate signed by its own key, as `self_signed_tls_client_auth` clients use.
fn self_signed(common_name: &str, organization: &str) -> Issued {
    let key = KeyPair::generate().unwrap();
    let cert = client_params(common_name, organization, false).self_signed(&key).unwrap();
    Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
}

/// Writes the server's TLS files into `dir`.
fn write_tls_files(pki: &Pki, server: &Issued, dir: &Path) {
    std::fs::write(dir.join("server.pem"), &server.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &server.key_pem).unwrap();
    std::fs::write(dir.join("clients-ca.pem"), &pki.ca_pem).unwrap();
}

const CLIENTS: &str = r#"
[[clients]]
client_id = "payments"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ x509_subject = "CN=payments,O=Example Corp" }]
allowed_scopes = ["api1.read"]

[[clients]]
client_id = "sensor"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ x509_thumbprint = "{sensor_thumbprint}" }]
allowed_scopes = ["api1.read"]
"#;

/// A server with a TLS listener and the two mTLS clients; `sensor` registers the
/// thumbprint of `sensor_cert`.
async fn mtls_server(pki: &Pki, sensor_cert: &Issued) -> (TestServer, String) {
    let server_cert = pki.server();
    let extra = format!(
        "[server.tls]\nlisten = \"127.0.0.1:{{tls_port}}\"\ncert = \"server.pem\"\nkey = \"server.key\"\n\
         client_ca = \"clients-ca.pem\"\n{}",
        CLIENTS.replace("{sensor_thumbprint}", &sensor_cert.thumbprint())
    );
    let app = TestServer::spawn_with_tls(&extra, |dir| write_tls_files(pki, &server_cert, dir)).await;
    let metadata = app.get_json("/.well-known/openid-configuration").await;
    let tls_token_url = metadata["mtls_endpoint_aliases"]["token_endpoint"].as_str().unwrap().to_owned();
    (app, tls_token_url)
}

async fn token(http: &reqwest::Client, url: &str, client_id: &str) -> reqwest::Response {
    http.post(url)
        .form(&[("grant_type", "client_credentials"), ("client_id", client_id), ("scope", "api1.read")])
        .send()
        .await
        .unwrap()
}

async fn claims_of(app: &TestServer, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "RFC 8705 §3: certificate-bound tokens stay Bearer");
    app.verify_jwt(body["access_token"].as_str().unwrap()).await
}

async fn assert_invalid_client(response: reqwest::Response, why: &str) {
    assert_eq!(response.status(), 400, "{why}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{why}");
}

#[tokio::test]
async fn tls_client_auth_issues_certificate_bound_tokens() {
    let pki = Pki::new();
    let (app, tls_token_url) = mtls_server(&pki, &self_signed("sensor", "Example Corp")).await;
    assert!(tls_token_url.starts_with("https://127.0.0.1:"), "{tls_token_url}");
    let payments = pki.client("payments", "Example Corp", false);

    let response = token(&pki.client_http(Some(&payments)), &tls_token_url, "payments").await;
    let claims = claims_of(&app, response).await;
    assert_eq!(claims["client_id"], "payments");
    assert_eq!(claims["cnf"]["x5t#S256"], payments.thumbprint());

    // Introspection tells the API about the binding (RFC 8705 §3.2).
    let access_token = raw_token(&pki, &payments, &tls_token_url).await;
    let introspection_form = [("token", access_token.as_str())];
    let introspect = || app.post_form("/introspect", Some(("api1", "api1-secret")), &introspection_form);
    let body: Value = response_json(introspect().await).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["cnf"]["x5t#S256"], payments.thumbprint());
    assert_eq!(body["token_type"], "Bearer");

    // The client authenticates the same way at the revocation endpoint's alias.
    let revoke = tls_token_url.replace("/token", "/revoke");
    let form = [("token", access_token.as_str()), ("client_id", "payments")];
    let stranger = pki.client_http(Some(&pki.client("intruder", "Example Corp", false)));
    assert_invalid_client(stranger.post(&revoke).form(&form).send().await.unwrap(), "revocation").await;
    assert_eq!(
        response_json(introspect().await).await["active"],
        true,
        "a refused revocation changes nothing"
    );
    let revoked = pki.client_http(Some(&payments)).post(&revoke).form(&form).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(response_json(introspect().await).await["active"], false);
}

async fn raw_token(pki: &Pki, identity: &Issued, url: &str) -> String {
    let response = token(&pki.client_http(Some(identity)), url, "payments").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn response_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn self_signed_tls_client_auth_matches_the_registered_thumbprint() {
    let pki = Pki::new();
    let sensor = self_signed("sensor", "Example Corp");
    let (app, tls_token_url) = mtls_server(&pki, &sensor).await;

    let claims =
        claims_of(&app, token(&pki.client_http(Some(&sensor)), &tls_token_url, "sensor").await).await;
    assert_eq!(claims["client_id"], "sensor");
    assert_eq!(claims["cnf"]["x5t#S256"], sensor.thumbprint());

    // Another self-signed certificate, even with the same subject, is another key.
    let impostor = self_signed("sensor", "Example Corp");
    assert_invalid_client(
        token(&pki.client_http(Some(&impostor)), &tls_token_url, "sensor").await,
        "another self-signed certificate",
    )
    .await;
    // A CA-issued certificate does not stand in for the registered one either.
    let issued = pki.client("sensor", "Example Corp", false);
    assert_invalid_client(
        token(&pki.client_http(Some(&issued)), &tls_token_url, "sensor").await,
        "CA-issued",
    )
    .await;
}

#[tokio::test]
async fn wrong_missing_forged_and_expired_certificates_are_invalid_client() {
    let pki = Pki::new();
    let (app, tls_token_url) = mtls_server(&pki, &self_signed("sensor", "Example Corp")).await;

    let cases = [
        (None, "no certificate"),
        (Some(pki.client("intruder", "Example Corp", false)), "a CA-issued certificate with another subject"),
        (Some(self_signed("payments", "Example Corp")), "the right subject, but not issued by the client CA"),
        (Some(pki.client("payments", "Example Corp", true)), "the right subject, expired"),
    ];
    for (identity, why) in &cases {
        let response = token(&pki.client_http(identity.as_ref()), &tls_token_url, "payments").await;
        assert_invalid_client(response, why).await;
    }
    // Over the plain listener there is no certificate at all.
    let plain = app
        .post_form("/token", None, &[("grant_type", "client_credentials"), ("client_id", "payments")])
        .await;
    assert_invalid_client(plain, "plain HTTP").await;
}

#[tokio::test]
async fn any_client_presenting_a_certificate_gets_a_bound_token_usable_only_with_it() {
    let pki = Pki::new();
    let (app, tls_token_url) = mtls_server(&pki, &self_signed("sensor", "Example Corp")).await;
    let holder = self_signed("svc-instance-7", "Example Corp");
    let http = pki.client_http(Some(&holder));

    // A shared-secret client over TLS with a certificate (RFC 8705 §3).
    let response = http
        .post(&tls_token_url)
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "api1.read")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let claims = app.verify_jwt(&access_token).await;
    assert_eq!(claims["cnf"]["x5t#S256"], holder.thumbprint());

    // Userinfo checks the binding before the scope: without the certificate the token
    // is invalid (401); with it, only the missing `openid` scope remains (403).
    let userinfo = tls_token_url.replace("/token", "/userinfo");
    let without = app.http.get(app.url("/userinfo")).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(without.status(), 401);
    assert!(without.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let other = pki.client_http(Some(&self_signed("svc-instance-8", "Example Corp")));
    assert_eq!(other.get(&userinfo).bearer_auth(&access_token).send().await.unwrap().status(), 401);
    let with = http.get(&userinfo).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(with.status(), 403, "the binding held; the scope did not");

    // Without a certificate, the same client gets an unbound token.
    let unbound = pki
        .client_http(None)
        .post(&tls_token_url)
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = unbound.json().await.unwrap();
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert!(claims.get("cnf").is_none(), "{claims}");
}

async fn orders(Authenticated(token): Authenticated) -> Result<String, Rejection> {
    token.require_scope("api1.read")?;
    Ok(format!("orders of {}", token.client_id))
}

/// An API behind its own TLS listener that asks for client certificates and hands
/// the presented one to the helper, as an API author would wire it.
async fn tls_api(pki: &Pki, issuer: &str) -> String {
    let server = pki.server();
    let config =
        tessera_http::tls::server_config(server.cert_pem.as_bytes(), server.key_pem.as_bytes(), None)
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let verifier = Arc::new(Verifier::new(issuer, "api1").with_api_base(&base));
    let router = Router::new().route("/orders", get(orders)).with_state(verifier).layer(
        axum::middleware::map_request(|mut request: axum::extract::Request| async move {
            let peer = request.extensions().get::<tessera_http::tls::TlsConnection>().cloned();
            if let Some(certificate) = peer.and_then(|peer| peer.peer_certificates.first().cloned()) {
                request.extensions_mut().insert(PeerCertificate(certificate.to_vec()));
            }
            request
        }),
    );
    tokio::spawn(tessera_http::tls::serve(listener, Arc::new(config), router, std::future::pending()));
    base
}

#[tokio::test]
async fn the_resource_helper_accepts_a_bound_token_only_with_its_certificate() {
    let pki = Pki::new();
    let (app, tls_token_url) = mtls_server(&pki, &self_signed("sensor", "Example Corp")).await;
    let payments = pki.client("payments", "Example Corp", false);
    let access_token = raw_token(&pki, &payments, &tls_token_url).await;
    let url = format!("{}/orders", tls_api(&pki, &app.issuer).await);

    let with = pki.client_http(Some(&payments)).get(&url).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(with.status(), 200);
    assert_eq!(with.text().await.unwrap(), "orders of payments");
    let stolen = pki.client_http(Some(&pki.client("payments", "Example Corp", false)));
    let response = stolen.get(&url).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(response.status(), 401, "same subject, other key");
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let bare = pki.client_http(None).get(&url).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(bare.status(), 401, "no certificate");
}

#[tokio::test]
async fn discovery_announces_mutual_tls() {
    let pki = Pki::new();
    let (app, tls_token_url) = mtls_server(&pki, &self_signed("sensor", "Example Corp")).await;
    let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(
        methods.contains(&"tls_client_auth".into())
            && methods.contains(&"self_signed_tls_client_auth".into())
    );
    let aliases = &metadata["mtls_endpoint_aliases"];
    let tls_base = tls_token_url.trim_end_matches("/token");
    assert_ne!(tls_base, app.issuer);
    for (name, path) in [("introspection_endpoint", "/introspect"), ("revocation_endpoint", "/revoke")] {
        assert_eq!(aliases[name], format!("{tls_base}{path}"));
    }
    // The plain issuer's own endpoints stay as they were.
    assert_eq!(metadata["token_endpoint"], app.url("/token"));

    // Without TLS, none of it is announced.
    let plain = TestServer::spawn().await;
    let metadata = plain.get_json("/.well-known/openid-configuration").await;
    assert!(metadata.get("mtls_endpoint_aliases").is_none());
    assert!(metadata.get("tls_client_certificate_bound_access_tokens").is_none());
}

/// RFC 9440 `Client-Cert: :base64(DER):`.
fn client_cert_header(issued: &Issued) -> String {
    format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&issued.der))
}

#[tokio::test]
async fn a_trusted_proxy_may_forward_the_client_certificate() {
    let pki = Pki::new();
    let payments = pki.client("payments", "Example Corp", false);
    let proxy = |trusted: &str| {
        format!(
            "[server.proxy]\ntrusted_addresses = [\"{trusted}\"]\nclient_ca = \"clients-ca.pem\"\n{}",
            CLIENTS.replace("{sensor_thumbprint}", &self_signed("s", "o").thumbprint())
        )
    };
    let ca_pem = pki.ca_pem.clone();
    let write_ca = |dir: &Path| std::fs::write(dir.join("clients-ca.pem"), &ca_pem).unwrap();
    let form = [("grant_type", "client_credentials"), ("client_id", "payments"), ("scope", "api1.read")];

    // From the proxy's address (the test connects from 127.0.0.1), the header counts.
    let behind_proxy = TestServer::spawn_with_tls(&proxy("127.0.0.0/8"), write_ca).await;
    let forwarded = |app: &TestServer, value: String| {
        app.http.post(app.url("/token")).header("Client-Cert", value).form(&form).send()
    };
    let claims =
        claims_of(&behind_proxy, forwarded(&behind_proxy, client_cert_header(&payments)).await.unwrap())
            .await;
    assert_eq!(claims["cnf"]["x5t#S256"], payments.thumbprint());
    // nginx's `$ssl_client_escaped_cert` form works too: the PEM, URI-component escaped.
    let escaped: String = payments
        .cert_pem
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    assert_eq!(forwarded(&behind_proxy, escaped).await.unwrap().status(), 200);
    // A forged certificate (right subject, not from the CA) is still refused.
    let forged = client_cert_header(&self_signed("payments", "Example Corp"));
    assert_invalid_client(forwarded(&behind_proxy, forged).await.unwrap(), "forged via proxy").await;
    let garbage = forwarded(&behind_proxy, ":bm90IGEgY2VydA==:".into()).await.unwrap();
    assert_eq!(garbage.status(), 400);

    // From anywhere else, the header is ignored: the client has no certificate.
    let elsewhere = TestServer::spawn_with_tls(&proxy("10.9.9.9"), write_ca).await;
    let response = forwarded(&elsewhere, client_cert_header(&payments)).await.unwrap();
    assert_invalid_client(response, "header from an untrusted peer").await;
}

#[tokio::test]
async fn a_public_clients_refresh_tokens_stay_bound_to_its_certificate() {
    let pki = Pki::new();
    let (app, tls_token_url) = mtls_server(&pki, &self_signed("sensor", "Example Corp")).await;
    let device_key = self_signed("native-install-1", "Example Corp");
    let http = pki.client_http(Some(&device_key));
    let redirect_uri = "http://127.0.0.1:4711/callback";
    let (url, verifier) = authorization_url(&app, "native", redirect_uri, "openid offline_access", &[]);
    let redirect = Browser::new(&app).authorize(&url, "alice", "alice-password-1").await;
    let code = query(&redirect, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "native"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", redirect_uri),
    ];
    let tokens = response_json(http.post(&tls_token_url).form(&form).send().await.unwrap()).await;
    let claims = app.verify_jwt(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["cnf"]["x5t#S256"], device_key.thumbprint());
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let refresh = |http: reqwest::Client, url: String, token: String| async move {
        let form =
            [("grant_type", "refresh_token"), ("client_id", "native"), ("refresh_token", token.as_str())];
        http.post(url).form(&form).send().await.unwrap()
    };
    // Stolen: another certificate, or none at all, gets nothing and burns nothing.
    let thief = pki.client_http(Some(&self_signed("native-install-1", "Example Corp")));
    for (http, url, why) in [
        (thief, tls_token_url.clone(), "another certificate"),
        (pki.client_http(None), tls_token_url.clone(), "no certificate"),
        (app.http.clone(), app.url("/token"), "plain HTTP"),
    ] {
        let response = refresh(http, url, refresh_token.clone()).await;
        assert_eq!(response.status(), 400, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{why}");
    }
    // The holder of the key refreshes, and the successor stays bound.
    let rotated = response_json(refresh(http.clone(), tls_token_url.clone(), refresh_token).await).await;
    let claims = app.verify_jwt(rotated["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["cnf"]["x5t#S256"], device_key.thumbprint());
    let successor = rotated["refresh_token"].as_str().unwrap().to_owned();
    let stolen = refresh(pki.client_http(None), tls_token_url.clone(), successor.clone()).await;
    assert_eq!(stolen.status(), 400);
    assert_eq!(refresh(http, tls_token_url, successor).await.status(), 200);
}

#[tokio::test]
async fn instances_behind_one_tls_load_balancer_advertise_its_public_url() {
    let pki = Pki::new();
    let server_cert = pki.server();
    let extra = "[server.tls]\nlisten = \"127.0.0.1:{tls_port}\"\ncert = \"server.pem\"\nkey = \"server.key\"\n\
                 client_ca = \"clients-ca.pem\"\npublic_url = \"https://mtls.id.example.com\"\n";
    let mut aliases = Vec::new();
    for _ in 0..2 {
        // Two instances, each with its own TLS port, behind the same balancer.
        let app = TestServer::spawn_with_tls(extra, |dir| write_tls_files(&pki, &server_cert, dir)).await;
        let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
        assert_eq!(metadata["mtls_endpoint_aliases"]["token_endpoint"], "https://mtls.id.example.com/token");
        assert_eq!(metadata["token_endpoint"], app.url("/token"), "the plain endpoints stay the issuer's");
        aliases.push(metadata["mtls_endpoint_aliases"].clone());
        app.stop().await;
    }
    assert_eq!(aliases[0], aliases[1], "both instances advertise the same aliases");
}

/// Issue 12 §6 on the TLS listener: connections that never finish their handshake, or
/// stop halfway through a ClientHello, are closed after the header read timeout, and a
/// normal HTTPS request beside 500 of them is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_closes_idle_and_half_sent_handshakes_and_serves_beside_them() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let pki = Pki::new();
    let server_cert = pki.server();
    let extra =
        "[server.tls]\nlisten = \"127.0.0.1:{tls_port}\"\ncert = \"server.pem\"\nkey = \"server.key\"\n";
    let app = TestServer::spawn_with_tls_env(
        extra,
        |dir| write_tls_files(&pki, &server_cert, dir),
        &[("TESSERA__SERVER__HEADER_READ_TIMEOUT", "1s"), ("TESSERA__SERVER__IDLE_TIMEOUT", "2s")],
    )
    .await;
    let metadata = app.get_json("/.well-known/openid-configuration").await;
    let tls_token_url = metadata["mtls_endpoint_aliases"]["token_endpoint"].as_str().unwrap().to_owned();
    let address = tls_token_url.trim_start_matches("https://").trim_end_matches("/token").to_owned();

    let mut stalled = Vec::new();
    for n in 0..500 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        if n % 2 == 1 {
            // The first bytes of a TLS record header of a ClientHello, then nothing.
            stream.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
        }
        stalled.push(stream);
    }
    let started = std::time::Instant::now();
    let health = pki.client_http(None).get(tls_token_url.replace("/token", "/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "served after {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(5);
    for stream in &mut stalled {
        let remaining = limit.saturating_sub(started.elapsed());
        let mut buffer = [0u8; 512];
        let closed = tokio::time::timeout(remaining, async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a stalled TLS connection still open after {limit:?}");
    }
    app.stop().await;
}
