//! Keys added for issue 14 (interop): signing algorithms, CORS origins, refresh without
//! rotation, the mTLS aliases' public URL.

use tessera_core::tokens::SigningAlgorithm;

use crate::test_support::{BASE, errors_of, has_error, load_env, load_ok, message, web_client};

const ONE: &str = "[clients] client_id=\"one\"";

fn public_client(id: &str, extra: &str) -> String {
    format!(
        "\n[[clients]]\nclient_id = \"{id}\"\nallowed_grant_types = [\"authorization_code\"]\n\
         require_client_secret = false\nredirect_uris = [\"http://localhost:3000/callback\", \
         \"com.example.app:/cb\"]\nallowed_scopes = [\"openid\"]\nallow_offline_access = true\n{extra}\n"
    )
}

#[test]
fn rs256_is_always_among_the_signing_algorithms_and_the_first_is_the_default() {
    let signing = load_ok(BASE).settings.signing;
    assert_eq!(signing.algorithms, [SigningAlgorithm::Es256, SigningAlgorithm::Rs256]);
    assert_eq!(signing.algorithm, SigningAlgorithm::Es256);
    let signing = load_ok(&format!("{BASE}\n[signing]\nalgorithms = [\"EdDSA\"]")).settings.signing;
    assert_eq!(signing.algorithms, [SigningAlgorithm::EdDsa, SigningAlgorithm::Rs256]);
    let signing =
        load_ok(&format!("{BASE}\n[signing]\nalgorithms = [\"RS256\", \"ES256\"]")).settings.signing;
    assert_eq!((signing.algorithm, signing.algorithms.len()), (SigningAlgorithm::Rs256, 2));
    // The older single key reads as [it, "RS256"].
    let signing = load_ok(&format!("{BASE}\n[signing]\nalgorithm = \"PS256\"")).settings.signing;
    assert_eq!(signing.algorithms, [SigningAlgorithm::Ps256, SigningAlgorithm::Rs256]);
}

#[test]
fn bad_signing_algorithm_lists_are_errors() {
    for list in ["[]", "[\"ES256\", \"ES256\"]", "[\"HS256\"]"] {
        let errors = errors_of(&format!("{BASE}\n[signing]\nalgorithms = {list}"));
        assert!(has_error(&errors, "[signing]", "algorithms"), "{list}: {errors:#?}");
    }
}

#[test]
fn a_client_signing_algorithm_must_have_a_key() {
    let config = load_ok(&format!(
        "{BASE}{}",
        web_client("one", "id_token_signed_response_alg = \"RS256\"\naccess_token_signing_alg = \"ES256\"")
    ));
    assert_eq!(config.clients[0].id_token_signed_response_alg, Some(SigningAlgorithm::Rs256));
    assert_eq!(config.clients[0].access_token_signing_alg, Some(SigningAlgorithm::Es256));
    let errors =
        errors_of(&format!("{BASE}{}", web_client("one", "id_token_signed_response_alg = \"EdDSA\"")));
    assert!(message(&errors, ONE, "id_token_signed_response_alg").contains("[signing] algorithms"));
}

#[test]
fn refresh_without_rotation_is_for_confidential_clients_only() {
    let config = load_ok(&format!("{BASE}{}", web_client("one", "refresh_token_rotation = false")));
    assert!(!config.clients[0].refresh_token_rotation);
    assert!(load_ok(&format!("{BASE}{}", web_client("one", ""))).clients[0].refresh_token_rotation);
    let errors = errors_of(&format!("{BASE}{}", public_client("one", "refresh_token_rotation = false")));
    assert!(has_error(&errors, ONE, "refresh_token_rotation"), "{errors:#?}");
    let errors = errors_of(&format!(
        "{BASE}{}",
        web_client("one", "refresh_token_rotation = false\nrefresh_token_expiration = \"sliding\"")
    ));
    assert!(has_error(&errors, ONE, "refresh_token_rotation"), "{errors:#?}");
}

#[test]
fn cors_origins_come_from_clients_and_public_redirect_uris() {
    let config = load_ok(&format!(
        "{BASE}{}{}",
        web_client("one", "allowed_cors_origins = [\"https://SPA.example.com/\", \"http://x.example:8080\"]"),
        public_client("two", "")
    ));
    assert_eq!(
        config.settings.cors_origins,
        ["http://localhost:3000", "http://x.example:8080", "https://spa.example.com"],
        "normalized as browsers send Origin; the confidential client's redirect URI is not added"
    );
    assert!(config.settings.cors_allows("http://localhost:3000"));
    assert!(!config.settings.cors_allows("https://app.example.com"));
    let errors = errors_of(&format!(
        "{BASE}{}",
        web_client("one", "allowed_cors_origins = [\"https://a.example/path\"]")
    ));
    assert!(has_error(&errors, ONE, "allowed_cors_origins"), "{errors:#?}");
}

#[test]
fn the_tls_public_url_is_the_base_of_the_mtls_aliases() {
    let tls = "[server.tls]\nlisten = \"0.0.0.0:8443\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let config = load_ok(&format!("{BASE}\n{tls}"));
    assert_eq!(config.settings.mtls.endpoint_base.as_deref(), Some("https://id.example.com:8443"));
    let config = load_ok(&format!("{BASE}\n{tls}public_url = \"https://mtls.id.example.com/\"\n"));
    assert_eq!(config.settings.mtls.endpoint_base.as_deref(), Some("https://mtls.id.example.com"));
    assert_eq!(config.settings.mtls_endpoint("/token"), "https://mtls.id.example.com/token");
    let errors = load_env(&format!("{BASE}\n{tls}public_url = \"http://plain.example\"\n"), &[]).unwrap_err();
    assert!(has_error(&errors, "[server.tls]", "public_url"), "{errors:#?}");
}
