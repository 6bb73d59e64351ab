//! The store contract: every backend runs these checks (`MemoryStore` in core's tests,
#![expect(clippy::unwrap_used, reason = "a test suite: a failed expectation is a panic")]
//! SQLite and PostgreSQL in `tessera-store-sql`). Each takes a fresh, empty store.

use std::sync::Arc;

use super::{CodeMismatch, CodePresentation};
use super::{Consumed, PendingGrant, RefreshRecord, Session, Store, StoredKey, TokenRecord};
use crate::catalog::Resources;
use crate::model::{ApiResource, ApiScope, ClientId, User};
use crate::secret::SecretHash;
use crate::test_support::service_client;

/// Requests are listed by key prefix, literally (no wildcards), unexpired only.
pub async fn requests_are_listed_by_prefix(store: &dyn Store) {
    let doc = serde_json::json!({ "n": 1 });
    store.put_request("list:alice:1", &doc, 100).await.unwrap();
    store.put_request("list:alice:2", &doc, 100).await.unwrap();
    store.put_request("list:alice:old", &doc, 10).await.unwrap();
    store.put_request("list:alicex:1", &doc, 100).await.unwrap();
    store.put_request("list_bob_1", &doc, 100).await.unwrap();
    let listed = store.requests_with_prefix("list:alice:", 50).await.unwrap();
    let keys: Vec<String> = listed.into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["list:alice:1", "list:alice:2"]);
    let underscored = store.requests_with_prefix("list_", 50).await.unwrap();
    assert!(underscored.iter().all(|(key, _)| key.starts_with("list_")), "`_` is no wildcard");
    assert_eq!(store.requests_with_prefix("list%", 50).await.unwrap(), Vec::new());
}

/// Runs every check in order against one fresh store. Panics on the first failure.
pub async fn run_all(store: Arc<dyn Store>) {
    requests_are_listed_by_prefix(store.as_ref()).await;
    clients_round_trip(store.as_ref()).await;
    resources_round_trip(store.as_ref()).await;
    users_round_trip(store.as_ref()).await;
    key_generation_is_claimed_once(store.as_ref()).await;
    replay_cache_admits_a_key_once(store.clone()).await;
    reference_tokens_resolve_until_expiry_or_revocation(store.as_ref()).await;
    revoked_jtis_are_remembered(store.as_ref()).await;
    code_is_redeemed_once_by_racing_consumers(store.clone()).await;
    expired_and_unknown_codes_are_missing(store.as_ref()).await;
    rotation_retires_the_old_refresh_token_for_one_live_successor(store.as_ref()).await;
    racing_rotations_of_one_refresh_token_leave_one_successor(store.clone()).await;
    rotations_of_many_refresh_tokens_at_once_are_each_answered_as_if_alone(store.clone()).await;
    reused_refresh_token_revokes_its_family_and_no_other_grant(store.as_ref()).await;
    a_revoked_family_is_remembered_until_its_refresh_tokens_expire(store.as_ref()).await;
    revoking_a_grant_revokes_its_access_tokens_and_codes_only(store.as_ref()).await;
    racing_revocations_of_a_grant_all_succeed(store.clone()).await;
    refresh_tokens_past_idle_or_absolute_expiry_do_not_rotate(store.as_ref()).await;
    sessions_resolve_until_expiry_or_deletion(store.as_ref()).await;
    requests_are_read_many_times_and_consumed_once(store.clone()).await;
    consent_is_replaced_per_user_and_client(store.as_ref()).await;
    sign_in_failures_count_within_a_window_until_cleared(store.as_ref()).await;
    shared_secret_keeps_the_first_candidate(store.clone()).await;
    purge_removes_only_expired_rows_in_batches(store.as_ref()).await;
    purge_removes_expired_sign_in_rows(store.as_ref()).await;
    racing_attempt_reservations_never_pass_the_limit(store.clone()).await;
    reservations_restart_with_the_window_and_can_be_refunded(store.as_ref()).await;
    client_sources_are_recorded_and_listed(store.as_ref()).await;
    a_registered_client_keeps_its_registration_and_is_replaced_whole(store.as_ref()).await;
    removing_a_client_revokes_its_grants_and_consents_only(store.as_ref()).await;
    user_sources_are_recorded_and_kept_by_put_user(store.as_ref()).await;
    removing_a_user_revokes_its_grants_sessions_and_consents_only(store.as_ref()).await;
    a_code_presented_wrongly_stays_unused(store.as_ref()).await;
    racing_wrong_presentations_do_not_burn_the_code(store.clone()).await;
    redemptions_of_many_codes_at_once_are_each_answered_as_if_alone(store.clone()).await;
    a_redeemed_code_reads_back_its_grant_until_it_expires(store.as_ref()).await;
    totp_steps_are_accepted_once_and_enrolment_never_replaces_a_confirmed_app(store.as_ref()).await;
    forty_racing_uses_of_one_totp_step_have_one_winner(store.clone()).await;
    forty_racing_uses_of_one_recovery_code_have_one_winner(store.clone()).await;
    passkeys_belong_to_one_user_and_are_listed_used_and_removed(store.as_ref()).await;
    sessions_are_listed_and_ended_per_user(store.as_ref()).await;
    removing_a_user_removes_its_second_factors(store.as_ref()).await;
    polls_are_paced_and_a_too_soon_poll_grows_the_interval(store.as_ref()).await;
    forty_racing_polls_of_one_request_have_one_in_time(store.clone()).await;
    a_poll_paces_and_redeems_a_decided_request_in_one_step(store.as_ref()).await;
    a_foreign_or_expired_poll_changes_nothing(store.as_ref()).await;
    forty_racing_polls_of_an_approved_request_redeem_it_once(store.clone()).await;
    forty_racing_device_starts_drawing_one_user_code_have_one_winner(store.clone()).await;
    forty_racing_decisions_of_a_device_request_have_one_winner_redeemed_once(store.clone()).await;
    forty_racing_decisions_of_a_ciba_request_have_one_winner_off_the_users_list(store.clone()).await;
    pushed_requests_and_interactions_are_used_once_by_racing_takes(store.clone()).await;
}

/// A pending device or CIBA request of client `tv`, live until 1 000.
fn pending_authorization(
    user_code: Option<&str>,
    subject: Option<&str>,
) -> crate::model::PendingAuthorization {
    crate::model::PendingAuthorization {
        client_id: "tv".into(),
        scopes: vec!["openid".into()],
        resources: Vec::new(),
        decision: crate::model::Decision::Pending,
        expires_at: 1_000,
        user_code: user_code.map(str::to_owned),
        subject: subject.map(str::to_owned),
        binding_message: None,
        ping: None,
        acr_values: Vec::new(),
    }
}

fn approval_by(subject: &str) -> crate::model::Decision {
    crate::model::Decision::Approved {
        subject: subject.into(),
        auth_time: 400,
        sid: "sid".into(),
        amr: vec!["pwd".into()],
    }
}

/// RFC 8628 §6.1: a user code names one request. Of 40 device requests started at
/// once with the same drawn code exactly one gets it, and the code names that one.
pub async fn forty_racing_device_starts_drawing_one_user_code_have_one_winner(store: Arc<dyn Store>) {
    use super::DeviceStore as _;
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let request = pending_authorization(Some("RACECODE"), None);
                let id = format!("start-race-{i}");
                store.start_device_request(&id, &request, 500).await.unwrap().then_some(id)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        winners.extend(racer.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "one start holds the code: {winners:?}");
    let (named, _) = store.pending_device_request("RACECODE", 500).await.unwrap().unwrap();
    assert_eq!(named, winners[0]);
    // A drawn code is never handed out again while its request lives.
    let again = pending_authorization(Some("RACECODE"), None);
    assert!(!store.start_device_request("start-race-late", &again, 600).await.unwrap());
}

/// Pending -> decided is one conditional write: of 40 racing decisions (approvals and
/// denials) exactly one is recorded, the code is spent, and the decision is redeemed
/// by exactly one of 40 racing polls.
pub async fn forty_racing_decisions_of_a_device_request_have_one_winner_redeemed_once(store: Arc<dyn Store>) {
    use super::{DecoupledPoll, DecoupledRequests, DeviceRequests, DeviceStore as _};
    let request = pending_authorization(Some("DECIDEME"), None);
    assert!(store.start_device_request("decide-race", &request, 500).await.unwrap());
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let decision = if i % 2 == 0 {
                    approval_by(&format!("user-{i}"))
                } else {
                    crate::model::Decision::Denied
                };
                store.decide_device_request("decide-race", &decision, 500).await.unwrap()
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for racer in racers {
        recorded.extend(racer.await.unwrap());
    }
    assert_eq!(recorded.len(), 1, "one decision recorded");
    let stored = DecoupledRequests::<DeviceRequests>::decoupled_request(store.as_ref(), "decide-race", 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.decision, recorded[0].decision, "the stored decision is the winner's");
    assert_eq!(store.pending_device_request("DECIDEME", 500).await.unwrap(), None, "the code is spent");
    let tv = ClientId::from("tv");
    let other = ClientId::from("other");
    let foreign =
        DecoupledRequests::<DeviceRequests>::poll_request(store.as_ref(), "decide-race", &other, 5, 500);
    assert_eq!(foreign.await.unwrap(), DecoupledPoll::Foreign);
    let pollers: Vec<_> = (0..40)
        .map(|_| {
            let (store, tv) = (store.clone(), tv.clone());
            tokio::spawn(async move {
                DecoupledRequests::<DeviceRequests>::poll_request(store.as_ref(), "decide-race", &tv, 5, 510)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken = Vec::new();
    for poller in pollers {
        match poller.await.unwrap() {
            DecoupledPoll::Taken(request) => taken.push(request),
            DecoupledPoll::TooSoon { .. } | DecoupledPoll::Unknown => {}
            other => panic!("a racing poll saw {other:?}"),
        }
    }
    assert_eq!(taken.len(), 1, "redeemed once");
    assert_eq!(taken[0].decision, recorded[0].decision);
}

/// The same for CIBA: one of 40 racing decisions by the named user is recorded, and
/// the request leaves that user's list of pending requests.
pub async fn forty_racing_decisions_of_a_ciba_request_have_one_winner_off_the_users_list(
    store: Arc<dyn Store>,
) {
    use super::CibaStore as _;
    let request = pending_authorization(None, Some("carol"));
    store.start_ciba_request("ciba-race", &request).await.unwrap();
    store.start_ciba_request("ciba-other", &pending_authorization(None, Some("carol"))).await.unwrap();
    let listed: Vec<String> =
        store.pending_ciba_requests("carol", 500).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, ["ciba-other", "ciba-race"]);
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let decision = if i % 2 == 0 { approval_by("carol") } else { crate::model::Decision::Denied };
                store.decide_ciba_request("ciba-race", &decision, 500).await.unwrap()
            })
        })
        .collect();
    let mut recorded = 0;
    for racer in racers {
        recorded += usize::from(racer.await.unwrap().is_some());
    }
    assert_eq!(recorded, 1, "one decision recorded");
    let listed: Vec<String> =
        store.pending_ciba_requests("carol", 500).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, ["ciba-other"], "the decided request left the list, the other stayed");
    // Past its expiry a pending request is neither listed nor decided.
    assert_eq!(store.pending_ciba_requests("carol", 1_000).await.unwrap(), Vec::new());
    assert_eq!(store.decide_ciba_request("ciba-other", &approval_by("carol"), 1_000).await.unwrap(), None);
}

/// RFC 9126 §4 and a finished interaction: of 40 racing takes exactly one gets the
/// request.
pub async fn pushed_requests_and_interactions_are_used_once_by_racing_takes(store: Arc<dyn Store>) {
    use super::{InteractionStore as _, PushedRequestStore as _};
    let request = crate::model::AuthorizationRequest {
        client_id: "web".into(),
        redirect_uri: "https://app.example/cb".into(),
        redirect_uri_sent: true,
        response_mode: crate::model::ResponseMode::Query,
        state: Some("s".into()),
        scopes: vec!["openid".into()],
        resources: Vec::new(),
        nonce: None,
        code_challenge: "challenge".into(),
        prompt: Vec::new(),
        max_age: None,
        login_hint: None,
        dpop_jkt: None,
        authenticated_at: None,
        consented: false,
        browser: None,
        authenticated_subject: None,
        acr_values: Vec::new(),
    };
    store.push_request("pushed-race", &request, 1_000).await.unwrap();
    store.save_interaction("interaction-race", &request, 1_000).await.unwrap();
    assert_eq!(store.interaction("interaction-race", 500).await.unwrap().as_ref(), Some(&request));
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store.take_pushed_request("pushed-race", 500).await.unwrap().is_some()
                } else {
                    store.finish_interaction("interaction-race", 500).await.unwrap().is_some()
                }
            })
        })
        .collect();
    let mut taken = 0;
    for racer in racers {
        taken += usize::from(racer.await.unwrap());
    }
    assert_eq!(taken, 2, "the pushed request and the interaction, each taken once");
    assert_eq!(store.interaction("interaction-race", 500).await.unwrap(), None);
}

/// 48 racing reservations against a limit of 5: exactly 5 win, however they interleave.
pub async fn racing_attempt_reservations_never_pass_the_limit(store: Arc<dyn Store>) {
    let racers: Vec<_> = (0..48)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.reserve_attempt("reserve-race", 5, 1_000, 900).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.unwrap());
    }
    assert_eq!(won, 5, "at most the limit, and the limit itself");
    assert_eq!(store.failures("reserve-race", 1_000).await.unwrap(), 5, "refusals count nothing");
}

/// A reservation starts the window; past it the count restarts; a refund gives one back.
pub async fn reservations_restart_with_the_window_and_can_be_refunded(store: &dyn Store) {
    for _ in 0..2 {
        assert!(store.reserve_attempt("reserve-a", 2, 100, 60).await.unwrap());
    }
    assert!(!store.reserve_attempt("reserve-a", 2, 159, 60).await.unwrap(), "window set by the first");
    assert!(store.reserve_attempt("reserve-b", 2, 159, 60).await.unwrap(), "keys are independent");
    store.refund_attempt("reserve-a").await.unwrap();
    assert_eq!(store.failures("reserve-a", 159).await.unwrap(), 1);
    assert!(store.reserve_attempt("reserve-a", 2, 159, 60).await.unwrap(), "the refunded one");
    assert!(!store.reserve_attempt("reserve-a", 2, 159, 60).await.unwrap());
    assert!(store.reserve_attempt("reserve-a", 2, 160, 60).await.unwrap(), "a new window");
    assert_eq!(store.failures("reserve-a", 160).await.unwrap(), 1);
    store.refund_attempt("reserve-a").await.unwrap();
    store.refund_attempt("reserve-a").await.unwrap();
    store.refund_attempt("reserve-unknown").await.unwrap();
    assert_eq!(store.failures("reserve-a", 160).await.unwrap(), 0, "never below zero");
}

/// Clients are stored, replaced by id, and unknown ids are `None`.
pub async fn clients_round_trip(store: &dyn Store) {
    let mut client = service_client("svc", &["api1.read"]);
    store.put_clients(std::slice::from_ref(&client)).await.unwrap();
    assert_eq!(store.client(&ClientId("svc".into())).await.unwrap(), Some(client.clone()));
    client.client_name = "renamed".into();
    store.put_clients(std::slice::from_ref(&client)).await.unwrap();
    assert_eq!(store.client(&ClientId("svc".into())).await.unwrap().unwrap().client_name, "renamed");
    assert_eq!(store.client(&ClientId("nobody".into())).await.unwrap(), None);
}

/// The resource set is replaced as a whole.
pub async fn resources_round_trip(store: &dyn Store) {
    assert_eq!(store.resources().await.unwrap(), Resources::default());
    let resources = Resources {
        api_scopes: vec![ApiScope { name: "a.read".into(), display_name: "A".into() }],
        api_resources: vec![ApiResource {
            name: "a".into(),
            display_name: "A".into(),
            scopes: vec!["a.read".into()],
            secrets: vec![crate::secret::StoredSecret::Sha256(SecretHash::of("s"))],
        }],
        identity_resources: vec![],
    };
    store.put_resources(&resources).await.unwrap();
    assert_eq!(store.resources().await.unwrap(), resources);
}

/// Users are found by username and replaced by username.
pub async fn users_round_trip(store: &dyn Store) {
    let mut alice = User {
        subject: "a1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        claims: serde_json::json!({ "name": "Alice" }).as_object().cloned().unwrap_or_default(),
    };
    store.put_user(&alice).await.unwrap();
    alice.password_hash = "$argon2id$y".into();
    store.put_user(&alice).await.unwrap();
    assert_eq!(store.user_by_username("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
    assert_eq!(store.user_by_subject("a1").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_subject("b2").await.unwrap(), None);
    assert_eq!(store.users().await.unwrap(), vec![alice]);
}

fn key(generation: i64, kid: &str) -> StoredKey {
    StoredKey {
        generation,
        kid: kid.into(),
        algorithm: "ES256".into(),
        private_key: vec![1, 2, 3, 0, 255],
        sealed: true,
        created_at: 10,
        activates_at: 20,
        retires_at: 30,
        expires_at: 40,
    }
}

/// Of two instances inserting the same generation, exactly one wins.
pub async fn key_generation_is_claimed_once(store: &dyn Store) {
    assert!(store.insert_signing_key(&key(1, "k1")).await.unwrap());
    assert!(!store.insert_signing_key(&key(1, "k1-other")).await.unwrap());
    assert!(store.insert_signing_key(&key(2, "k2")).await.unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys, vec![key(1, "k1"), key(2, "k2")]);
}

/// A replay key is admitted once, even by 50 racing calls; again after it expired.
pub async fn replay_cache_admits_a_key_once(store: Arc<dyn Store>) {
    let attempts = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.remember_once("jti-race", 1_000, 100).await.unwrap() })
    });
    let mut admitted = 0;
    for attempt in attempts {
        admitted += usize::from(attempt.await.unwrap());
    }
    assert_eq!(admitted, 1, "exactly one racing call is admitted");
    assert!(!store.remember_once("jti-race", 1_000, 999).await.unwrap());
    assert!(store.remember_once("jti-race", 2_000, 1_000).await.unwrap(), "admitted again once expired");
    assert!(store.remember_once("jti-other", 1_000, 100).await.unwrap());
}

fn record(jti: &str, expires_at: i64) -> TokenRecord {
    TokenRecord {
        jti: jti.into(),
        client_id: "svc".into(),
        subject: "svc".into(),
        scope: vec!["a.read".into(), "a.write".into()],
        audience: vec!["a".into()],
        issued_at: 100,
        expires_at,
    }
}

/// Reference tokens are found by hash while unexpired, and gone once revoked.
pub async fn reference_tokens_resolve_until_expiry_or_revocation(store: &dyn Store) {
    let hash = SecretHash::of("opaque-1");
    store.put_reference_token(&hash, &record("j1", 200)).await.unwrap();
    assert_eq!(store.reference_token(&hash, 199).await.unwrap(), Some(record("j1", 200)));
    assert_eq!(store.reference_token(&hash, 200).await.unwrap(), None);
    assert_eq!(store.reference_token(&SecretHash::of("other"), 150).await.unwrap(), None);
    assert!(store.revoke_reference_token(&hash).await.unwrap());
    assert!(!store.revoke_reference_token(&hash).await.unwrap());
    assert_eq!(store.reference_token(&hash, 150).await.unwrap(), None);
}

/// A revoked `jti` is remembered.
pub async fn revoked_jtis_are_remembered(store: &dyn Store) {
    assert!(!store.is_revoked("j-revoked", None).await.unwrap());
    store.revoke_jti("j-revoked", 500).await.unwrap();
    store.revoke_jti("j-revoked", 500).await.unwrap();
    assert!(store.is_revoked("j-revoked", None).await.unwrap());
    assert!(store.is_revoked("j-revoked", Some(&"g-unrelated".into())).await.unwrap());
}

/// Purging deletes expired rows only, at most `batch` of each kind per call.
pub async fn purge_removes_only_expired_rows_in_batches(store: &dyn Store) {
    for i in 0..5 {
        store.remember_once(&format!("purge-{i}"), 10, 0).await.unwrap();
        store.revoke_jti(&format!("purge-jti-{i}"), 10).await.unwrap();
    }
    store.remember_once("keep", 10_000, 0).await.unwrap();
    store.put_reference_token(&SecretHash::of("old"), &record("old", 10)).await.unwrap();
    store.put_reference_token(&SecretHash::of("live"), &record("live", 10_000)).await.unwrap();
    let polled = serde_json::json!({ "client_id": "tv" });
    for i in 0..3 {
        store.put_polled(&format!("device:purge-{i}"), "pending", &polled, 10).await.unwrap();
    }
    store.put_polled("device:purge-live", "pending", &polled, 10_000).await.unwrap();
    let first = store.purge_expired(5_000, 2).await.unwrap();
    assert!(first >= 4, "a batch of two per kind, got {first}");
    let mut total = first;
    loop {
        let purged = store.purge_expired(5_000, 2).await.unwrap();
        if purged == 0 {
            break;
        }
        total += purged;
    }
    // 5 replay keys + 5 jtis + 1 reference token + 3 device requests + the contract's
    // earlier rows that expired.
    assert!(total >= 14, "purged {total}");
    assert!(store.polled("device:purge-live", 5_000).await.unwrap().is_some(), "live request kept");
    assert!(!store.remember_once("keep", 10_000, 5_000).await.unwrap(), "live replay key kept");
    assert!(!store.is_revoked("purge-jti-0", None).await.unwrap());
    assert!(store.reference_token(&SecretHash::of("live"), 5_000).await.unwrap().is_some());
    assert!(store.signing_keys().await.unwrap().is_empty(), "keys past expires_at are purged");
}

fn pending_grant(grant_id: &str) -> PendingGrant {
    PendingGrant {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "a1".into(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into(), "api1.read".into()],
        resources: vec!["https://api1.example".into()],
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: 90,
        sid: "sid-1".into(),
        dpop_jkt: None,
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        acr: Some("mfa".into()),
    }
}

/// Every check that races many callers for one value counts the winners the same way.
async fn count_fresh<T>(outcomes: Vec<tokio::task::JoinHandle<Consumed<T>>>) -> (usize, Vec<String>) {
    let mut fresh = 0;
    let mut replayed = Vec::new();
    for outcome in outcomes {
        match outcome.await.unwrap() {
            Consumed::Fresh(_) => fresh += 1,
            Consumed::Replayed { grant_id } => replayed.push(grant_id.0),
            Consumed::Missing => panic!("a racing caller saw Missing"),
        }
    }
    (fresh, replayed)
}

/// Of 50 racing redemptions of one code exactly one is `Fresh`; the rest, and any
/// later one, are `Replayed` with the code's grant (RFC 6749 §4.1.2).
pub async fn code_is_redeemed_once_by_racing_consumers(store: Arc<dyn Store>) {
    let code = SecretHash::of("code-race");
    store.put_code(&code, &pending_grant("g-code"), 200).await.unwrap();
    let outcomes: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_code(&code, 100).await.unwrap() })
        })
        .collect();
    let (fresh, replayed) = count_fresh(outcomes).await;
    assert_eq!(fresh, 1, "exactly one racing redemption is fresh");
    assert_eq!(replayed.len(), 49);
    assert!(replayed.iter().all(|grant_id| grant_id == "g-code"));
    assert_eq!(
        store.consume_code(&code, 150).await.unwrap(),
        Consumed::Replayed { grant_id: "g-code".into() }
    );

    let once = SecretHash::of("code-once");
    store.put_code(&once, &pending_grant("g-code-once"), 200).await.unwrap();
    assert_eq!(store.consume_code(&once, 100).await.unwrap(), Consumed::Fresh(pending_grant("g-code-once")));
}

/// A code is `Missing` from its expiry on, and an unknown code is `Missing`.
pub async fn expired_and_unknown_codes_are_missing(store: &dyn Store) {
    let code = SecretHash::of("code-expiring");
    store.put_code(&code, &pending_grant("g-code-expiring"), 200).await.unwrap();
    assert_eq!(store.consume_code(&code, 200).await.unwrap(), Consumed::Missing);
    assert_eq!(store.consume_code(&code, 300).await.unwrap(), Consumed::Missing);
    assert_eq!(store.consume_code(&SecretHash::of("code-unknown"), 100).await.unwrap(), Consumed::Missing);
}

fn refresh(grant_id: &str, issued_at: i64) -> RefreshRecord {
    RefreshRecord {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "a1".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        resources: vec!["https://api1.example".into()],
        auth_time: 90,
        sid: "sid-1".into(),
        issued_at,
        expires_at: 10_000,
        idle_expires_at: None,
        dpop_jkt: Some("jkt-1".into()),
        x5t_s256: Some("x5t-1".into()),
        amr: vec!["hwk".into(), "user".into(), "mfa".into()],
        acr: Some("phr".into()),
    }
}

/// Rotation uses the old token up and stores one live successor (RFC 9700 §4.14.2).
pub async fn rotation_retires_the_old_refresh_token_for_one_live_successor(store: &dyn Store) {
    let (first, second, third) = (SecretHash::of("rt-a1"), SecretHash::of("rt-a2"), SecretHash::of("rt-a3"));
    store.put_refresh_token(&first, &refresh("g-rt-a", 100)).await.unwrap();
    assert_eq!(store.refresh_token(&first).await.unwrap(), Consumed::Fresh(refresh("g-rt-a", 100)));

    let rotated = store.rotate_refresh_token(&first, &second, &refresh("g-rt-a", 200), 200).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()));
    let replayed = Consumed::Replayed { grant_id: "g-rt-a".into() };
    assert_eq!(store.refresh_token(&first).await.unwrap(), replayed);
    assert_eq!(store.refresh_token(&second).await.unwrap(), Consumed::Fresh(refresh("g-rt-a", 200)));

    let again = store.rotate_refresh_token(&first, &third, &refresh("g-rt-a", 300), 300).await.unwrap();
    assert_eq!(again, Consumed::Replayed { grant_id: "g-rt-a".into() });
    assert_eq!(store.refresh_token(&third).await.unwrap(), Consumed::Missing, "no second successor");

    let unknown = SecretHash::of("rt-unknown");
    assert_eq!(store.refresh_token(&unknown).await.unwrap(), Consumed::Missing);
    let rotated = store.rotate_refresh_token(&unknown, &third, &refresh("g-rt-a", 300), 300).await.unwrap();
    assert_eq!(rotated, Consumed::Missing);
    assert_eq!(store.refresh_token(&third).await.unwrap(), Consumed::Missing);
}

/// Of 50 racing rotations of one token exactly one is `Fresh`, and only its
/// successor exists.
pub async fn racing_rotations_of_one_refresh_token_leave_one_successor(store: Arc<dyn Store>) {
    let old = SecretHash::of("rt-race");
    store.put_refresh_token(&old, &refresh("g-rt-race", 100)).await.unwrap();
    let outcomes: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = SecretHash::of(&format!("rt-race-successor-{i}"));
                store.rotate_refresh_token(&old, &new, &refresh("g-rt-race", 200), 200).await.unwrap()
            })
        })
        .collect();
    let (fresh, replayed) = count_fresh(outcomes).await;
    assert_eq!(fresh, 1, "exactly one racing rotation is fresh");
    assert!(replayed.len() == 49 && replayed.iter().all(|grant_id| grant_id == "g-rt-race"));
    let mut live = 0;
    for i in 0..50 {
        let successor =
            store.refresh_token(&SecretHash::of(&format!("rt-race-successor-{i}"))).await.unwrap();
        match successor {
            Consumed::Fresh(record) => {
                assert_eq!(record, refresh("g-rt-race", 200));
                live += 1;
            }
            other => assert_eq!(other, Consumed::Missing),
        }
    }
    assert_eq!(live, 1, "exactly one successor exists");
}

/// 80 rotations of 60 refresh tokens at once (a store may carry them in one
/// statement): each is answered as it would be alone. A live token is `Fresh` and its
/// own successor is stored; a used one is `Replayed`; an expired one is `Missing`; a
/// token rotated twice at once is `Fresh` once, `Replayed` once, and has one successor.
pub async fn rotations_of_many_refresh_tokens_at_once_are_each_answered_as_if_alone(store: Arc<dyn Store>) {
    #[derive(Clone, Copy, Debug)]
    enum Case {
        Live,
        Used,
        Expired,
        Twice,
    }
    let case_of = |k: usize| [Case::Live, Case::Used, Case::Expired, Case::Twice][k % 4];
    let token = |k: usize| SecretHash::of(&format!("rt-at-once-{k}"));
    let successor_of = |k: usize, copy: usize| SecretHash::of(&format!("rt-at-once-{k}-next-{copy}"));
    let grant_id = |k: usize| format!("g-rt-at-once-{k}");
    let record =
        |k: usize, issued_at: i64| RefreshRecord { expires_at: 1_000, ..refresh(&grant_id(k), issued_at) };
    for k in 0..60 {
        let first = match case_of(k) {
            Case::Expired => RefreshRecord { idle_expires_at: Some(150), ..record(k, 100) },
            _ => record(k, 100),
        };
        store.put_refresh_token(&token(k), &first).await.unwrap();
        if matches!(case_of(k), Case::Used) {
            let used = store.rotate_refresh_token(&token(k), &successor_of(k, 9), &record(k, 150), 150).await;
            assert_eq!(used.unwrap(), Consumed::Fresh(()));
        }
    }
    let mut rotations = Vec::new();
    for k in 0..60 {
        let copies = if matches!(case_of(k), Case::Twice) { 2 } else { 1 };
        for copy in 0..copies {
            let (store, old, new, next) = (store.clone(), token(k), successor_of(k, copy), record(k, 200));
            rotations.push(tokio::spawn(async move {
                (k, copy, store.rotate_refresh_token(&old, &new, &next, 200).await.unwrap())
            }));
        }
    }
    let mut fresh_twice = std::collections::HashMap::<usize, Vec<usize>>::new();
    for rotation in rotations {
        let (k, copy, outcome) = rotation.await.unwrap();
        let replayed = Consumed::Replayed { grant_id: grant_id(k).as_str().into() };
        match (case_of(k), outcome) {
            (Case::Live, outcome) => assert_eq!(outcome, Consumed::Fresh(()), "token {k}"),
            (Case::Used, outcome) => assert_eq!(outcome, replayed, "token {k}"),
            (Case::Expired, outcome) => assert_eq!(outcome, Consumed::Missing, "token {k}"),
            (Case::Twice, Consumed::Fresh(())) => fresh_twice.entry(k).or_default().push(copy),
            (Case::Twice, outcome) => assert_eq!(outcome, replayed, "token {k}"),
        }
    }
    for k in 0..60 {
        let live_successors: Vec<usize> = {
            let mut live = Vec::new();
            for copy in 0..2 {
                if let Consumed::Fresh(stored) = store.refresh_token(&successor_of(k, copy)).await.unwrap() {
                    assert_eq!(stored, record(k, 200), "token {k}'s successor is its own");
                    live.push(copy);
                }
            }
            live
        };
        match case_of(k) {
            Case::Live => assert_eq!(live_successors, vec![0], "token {k}"),
            Case::Used | Case::Expired => assert_eq!(live_successors, Vec::<usize>::new(), "token {k}"),
            Case::Twice => {
                assert_eq!(
                    fresh_twice.get(&k).map(Vec::len),
                    Some(1),
                    "token {k}, rotated twice, is fresh once"
                );
                assert_eq!(
                    Some(&live_successors),
                    fresh_twice.get(&k),
                    "token {k} has the fresh one's successor"
                );
            }
        }
    }
}

/// Reusing a rotated token and revoking its grant kills every token of the family,
/// successors included; a second grant of the same user and client stays usable.
pub async fn reused_refresh_token_revokes_its_family_and_no_other_grant(store: &dyn Store) {
    let (first, second, third) = (SecretHash::of("rt-f1"), SecretHash::of("rt-f2"), SecretHash::of("rt-f3"));
    let (other, other_next) = (SecretHash::of("rt-other1"), SecretHash::of("rt-other2"));
    store.put_refresh_token(&first, &refresh("g-family", 100)).await.unwrap();
    store.put_refresh_token(&other, &refresh("g-family-other", 100)).await.unwrap();
    let rotated = store.rotate_refresh_token(&first, &second, &refresh("g-family", 200), 200).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()));

    let reuse = store.rotate_refresh_token(&first, &third, &refresh("g-family", 300), 300).await.unwrap();
    let Consumed::Replayed { grant_id } = reuse else { panic!("reuse must be reported, got {reuse:?}") };
    store.revoke_grant(&grant_id, 300, 300).await.unwrap();

    let revoked = Consumed::Replayed { grant_id: "g-family".into() };
    assert_eq!(store.refresh_token(&first).await.unwrap(), revoked);
    assert_eq!(store.refresh_token(&second).await.unwrap(), revoked, "the live successor is revoked too");
    let rotated = store.rotate_refresh_token(&second, &third, &refresh("g-family", 400), 400).await.unwrap();
    assert_eq!(rotated, Consumed::Replayed { grant_id: "g-family".into() });
    assert_eq!(store.refresh_token(&third).await.unwrap(), Consumed::Missing);

    assert_eq!(store.refresh_token(&other).await.unwrap(), Consumed::Fresh(refresh("g-family-other", 100)));
    let rotated =
        store.rotate_refresh_token(&other, &other_next, &refresh("g-family-other", 400), 400).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()));

    // A token stored for a grant already revoked (it lost a race with the revocation)
    // is dead on arrival.
    let late = SecretHash::of("rt-f-late");
    store.put_refresh_token(&late, &refresh("g-family", 500)).await.unwrap();
    assert_eq!(store.refresh_token(&late).await.unwrap(), revoked);
}

/// A revoked grant stays revoked, through purges, for as long as any refresh token of
/// its family could be used, however short `remember_until`: also one stored after
/// the revocation (the first token of a grant whose code was replayed meanwhile).
/// A successor never outlives its family.
pub async fn a_revoked_family_is_remembered_until_its_refresh_tokens_expire(store: &dyn Store) {
    let (first, second, third) = (SecretHash::of("rt-m1"), SecretHash::of("rt-m2"), SecretHash::of("rt-m3"));
    store.put_refresh_token(&first, &refresh("g-remember", 100)).await.unwrap();
    let outliving = RefreshRecord { expires_at: 20_000, ..refresh("g-remember", 200) };
    assert!(
        store.rotate_refresh_token(&first, &second, &outliving, 200).await.is_err(),
        "a successor that would outlive its family is refused"
    );
    let rotated =
        store.rotate_refresh_token(&first, &second, &refresh("g-remember", 200), 200).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()), "the refused rotation used nothing up");

    store.revoke_grant(&"g-remember".into(), 300, 300).await.unwrap();
    store
        .put_refresh_token(&third, &RefreshRecord { expires_at: 20_000, ..refresh("g-remember-late", 300) })
        .await
        .unwrap();
    store.revoke_grant(&"g-remember-late".into(), 300, 300).await.unwrap();
    let late = SecretHash::of("rt-m-late");
    let late_record = RefreshRecord { expires_at: 30_000, ..refresh("g-remember-late", 400) };
    store.put_refresh_token(&late, &late_record).await.unwrap();

    let purge_at = |now| async move { while store.purge_expired(now, 100).await.unwrap() > 0 {} };
    purge_at(5_000).await;
    let revoked = |grant_id: &str| Consumed::Replayed { grant_id: grant_id.into() };
    assert_eq!(store.refresh_token(&second).await.unwrap(), revoked("g-remember"), "live successor");
    let rotated = store.rotate_refresh_token(&second, &first, &refresh("g-remember", 5_000), 5_000).await;
    assert_eq!(rotated.unwrap(), Consumed::Replayed { grant_id: "g-remember".into() });
    assert_eq!(store.refresh_token(&third).await.unwrap(), revoked("g-remember-late"));
    assert_eq!(store.refresh_token(&late).await.unwrap(), revoked("g-remember-late"), "stored after it");

    purge_at(25_000).await;
    assert_eq!(store.refresh_token(&late).await.unwrap(), revoked("g-remember-late"), "until it expires");
}

/// Revoking a grant revokes every access token that names it (judged when read, so
/// also one minted after the revocation) and its unused codes; other grants' tokens
/// and codes stay valid.
pub async fn revoking_a_grant_revokes_its_access_tokens_and_codes_only(store: &dyn Store) {
    let (code, other_code) = (SecretHash::of("code-g1"), SecretHash::of("code-g2"));
    store.put_code(&code, &pending_grant("g-access"), 2_000).await.unwrap();
    store.put_code(&other_code, &pending_grant("g-access-other"), 2_000).await.unwrap();
    assert!(!store.is_revoked("at-g1-a", Some(&"g-access".into())).await.unwrap());

    store.revoke_grant(&"g-access".into(), 500, 4_100).await.unwrap();
    store.revoke_grant(&"g-access".into(), 600, 4_200).await.unwrap();

    assert!(store.is_revoked("at-g1-a", Some(&"g-access".into())).await.unwrap());
    assert!(
        store.is_revoked("at-g1-late", Some(&"g-access".into())).await.unwrap(),
        "minted after the revocation"
    );
    assert!(
        !store.is_revoked("at-g2-a", Some(&"g-access-other".into())).await.unwrap(),
        "another grant's token"
    );
    assert!(!store.is_revoked("at-g1-a", None).await.unwrap(), "only by its grant");
    assert!(!matches!(store.consume_code(&code, 700).await.unwrap(), Consumed::Fresh(_)));
    assert_eq!(
        store.consume_code(&other_code, 700).await.unwrap(),
        Consumed::Fresh(pending_grant("g-access-other"))
    );
}

/// Many racing revocations of one grant all succeed, and leave it revoked.
pub async fn racing_revocations_of_a_grant_all_succeed(store: Arc<dyn Store>) {
    store.put_refresh_token(&SecretHash::of("rt-race-revoke"), &refresh("g-race-revoke", 100)).await.unwrap();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.revoke_grant(&"g-race-revoke".into(), 200 + i, 4_000).await.unwrap() },
            )
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert!(store.is_revoked("at-race-revoke", Some(&"g-race-revoke".into())).await.unwrap());
    let revoked = store.refresh_token(&SecretHash::of("rt-race-revoke")).await.unwrap();
    assert_eq!(revoked, Consumed::Replayed { grant_id: "g-race-revoke".into() });
}

/// A token used after its sliding (idle) or absolute expiry does not rotate.
pub async fn refresh_tokens_past_idle_or_absolute_expiry_do_not_rotate(store: &dyn Store) {
    let sliding = |issued_at: i64, idle: i64| RefreshRecord {
        expires_at: 1_000,
        idle_expires_at: Some(idle),
        ..refresh("g-idle", issued_at)
    };
    let (first, second, third) =
        (SecretHash::of("rt-idle1"), SecretHash::of("rt-idle2"), SecretHash::of("rt-idle3"));
    store.put_refresh_token(&first, &sliding(100, 150)).await.unwrap();
    let late = store.rotate_refresh_token(&first, &second, &sliding(150, 200), 150).await.unwrap();
    assert_eq!(late, Consumed::Missing, "idle expiry reached");
    assert_eq!(store.refresh_token(&second).await.unwrap(), Consumed::Missing);

    let (fresh, next) = (SecretHash::of("rt-idle4"), SecretHash::of("rt-idle5"));
    store.put_refresh_token(&fresh, &sliding(100, 150)).await.unwrap();
    let rotated = store.rotate_refresh_token(&fresh, &next, &sliding(149, 1_200), 149).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()), "within the idle window");
    let late = store.rotate_refresh_token(&next, &third, &sliding(1_000, 1_300), 1_000).await.unwrap();
    assert_eq!(late, Consumed::Missing, "absolute expiry of the family reached");
    assert_eq!(store.refresh_token(&third).await.unwrap(), Consumed::Missing);
}

fn session(sid: &str, expires_at: i64) -> Session {
    Session {
        subject: "a1".into(),
        username: "alice".into(),
        auth_time: 90,
        sid: sid.into(),
        expires_at,
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        verified_at: Some(95),
    }
}

/// Sessions are found by hash until they expire or are deleted.
pub async fn sessions_resolve_until_expiry_or_deletion(store: &dyn Store) {
    let (hash, other) = (SecretHash::of("session-1"), SecretHash::of("session-2"));
    store.put_session(&hash, &session("sid-s1", 200)).await.unwrap();
    store.put_session(&other, &session("sid-s2", 200)).await.unwrap();
    assert_eq!(store.session(&hash, 199).await.unwrap(), Some(session("sid-s1", 200)));
    assert_eq!(store.session(&hash, 200).await.unwrap(), None);
    assert_eq!(store.session(&SecretHash::of("session-unknown"), 100).await.unwrap(), None);
    store.delete_session(&hash).await.unwrap();
    store.delete_session(&hash).await.unwrap();
    assert_eq!(store.session(&hash, 100).await.unwrap(), None);
    assert_eq!(store.session(&other, 100).await.unwrap(), Some(session("sid-s2", 200)));
}

/// A pending request can be read many times but consumed once, even by 50 racing
/// callers (RFC 9126 §2.2); an expired one is gone for both.
pub async fn requests_are_read_many_times_and_consumed_once(store: Arc<dyn Store>) {
    let document = serde_json::json!({ "client_id": "web", "scope": "openid", "state": "xyz" });
    store.put_request("req-race", &document, 200).await.unwrap();
    assert_eq!(store.request("req-race", 100).await.unwrap(), Some(document.clone()));
    assert_eq!(store.request("req-race", 101).await.unwrap(), Some(document.clone()));
    let outcomes: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_request("req-race", 150).await.unwrap() })
        })
        .collect();
    let mut consumed = Vec::new();
    for outcome in outcomes {
        consumed.extend(outcome.await.unwrap());
    }
    assert_eq!(consumed, vec![document.clone()], "exactly one racing caller consumes it");
    assert_eq!(store.request("req-race", 150).await.unwrap(), None);

    store.put_request("req-expiring", &document, 200).await.unwrap();
    assert_eq!(store.request("req-expiring", 200).await.unwrap(), None);
    assert_eq!(store.consume_request("req-expiring", 200).await.unwrap(), None);
    assert_eq!(store.consume_request("req-unknown", 100).await.unwrap(), None);
}

/// Consent is remembered per user and client, and replaced as a whole.
pub async fn consent_is_replaced_per_user_and_client(store: &dyn Store) {
    let scopes = |names: &[&str]| names.iter().map(|&name| name.to_owned()).collect::<Vec<_>>();
    assert!(store.consented_scopes("consent-user", "web").await.unwrap().is_empty());
    store.put_consent("consent-user", "web", &scopes(&["openid", "api1.read"])).await.unwrap();
    store.put_consent("consent-user", "other", &scopes(&["openid"])).await.unwrap();
    assert_eq!(
        store.consented_scopes("consent-user", "web").await.unwrap(),
        scopes(&["openid", "api1.read"])
    );
    store.put_consent("consent-user", "web", &scopes(&["openid"])).await.unwrap();
    assert_eq!(store.consented_scopes("consent-user", "web").await.unwrap(), scopes(&["openid"]));
    assert_eq!(store.consented_scopes("consent-user", "other").await.unwrap(), scopes(&["openid"]));
    assert!(store.consented_scopes("consent-other-user", "web").await.unwrap().is_empty());
}

/// Failures count within a window that starts at the first one; a new window starts
/// from 1; clearing forgets them; keys are independent.
pub async fn sign_in_failures_count_within_a_window_until_cleared(store: &dyn Store) {
    assert_eq!(store.failures("throttle-a", 100).await.unwrap(), 0);
    assert_eq!(store.record_failure("throttle-a", 100, 60).await.unwrap(), 1);
    assert_eq!(store.record_failure("throttle-a", 110, 60).await.unwrap(), 2);
    assert_eq!(
        store.record_failure("throttle-a", 159, 60).await.unwrap(),
        3,
        "window set by the first failure"
    );
    assert_eq!(store.failures("throttle-a", 159).await.unwrap(), 3);
    assert_eq!(store.failures("throttle-a", 160).await.unwrap(), 0, "window passed");
    assert_eq!(store.record_failure("throttle-a", 160, 60).await.unwrap(), 1, "a new window");
    assert_eq!(store.record_failure("throttle-a", 219, 60).await.unwrap(), 2);
    assert_eq!(store.record_failure("throttle-b", 219, 60).await.unwrap(), 1, "keys are independent");
    store.clear_failures("throttle-a").await.unwrap();
    assert_eq!(store.failures("throttle-a", 219).await.unwrap(), 0);
    assert_eq!(store.failures("throttle-b", 219).await.unwrap(), 1);
    assert_eq!(store.record_failure("throttle-a", 220, 60).await.unwrap(), 1);
}

/// Of many instances offering a secret, every one gets the first stored candidate.
pub async fn shared_secret_keeps_the_first_candidate(store: Arc<dyn Store>) {
    let outcomes: Vec<_> = (0u8..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.shared_secret("cookie-key", &[i, 0, 255]).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for outcome in outcomes {
        seen.push(outcome.await.unwrap());
    }
    let first = seen[0].clone();
    assert!(seen.iter().all(|value| *value == first), "every instance agrees");
    assert!(first.len() == 3 && first[0] < 20 && first[1..] == [0, 255]);
    assert_eq!(store.shared_secret("cookie-key", b"later").await.unwrap(), first);
    assert_eq!(store.shared_secret("csrf-key", b"other").await.unwrap(), b"other".to_vec());
}

/// Purging removes expired codes, refresh tokens, sessions, requests and failure
/// windows, and keeps live ones (read back "in the past" to tell the two apart).
pub async fn purge_removes_expired_sign_in_rows(store: &dyn Store) {
    let (old_code, live_code) = (SecretHash::of("purge-code-old"), SecretHash::of("purge-code-live"));
    store.put_code(&old_code, &pending_grant("g-purge"), 20_000).await.unwrap();
    store.put_code(&live_code, &pending_grant("g-purge"), 90_000).await.unwrap();
    let (old_rt, live_rt) = (SecretHash::of("purge-rt-old"), SecretHash::of("purge-rt-live"));
    store
        .put_refresh_token(&old_rt, &RefreshRecord { expires_at: 20_000, ..refresh("g-purge", 0) })
        .await
        .unwrap();
    store
        .put_refresh_token(&live_rt, &RefreshRecord { expires_at: 90_000, ..refresh("g-purge", 0) })
        .await
        .unwrap();
    let (old_session, live_session) = (SecretHash::of("purge-s-old"), SecretHash::of("purge-s-live"));
    store.put_session(&old_session, &session("sid-old", 20_000)).await.unwrap();
    store.put_session(&live_session, &session("sid-live", 90_000)).await.unwrap();
    let document = serde_json::json!({ "client_id": "web" });
    store.put_request("purge-req-old", &document, 20_000).await.unwrap();
    store.put_request("purge-req-live", &document, 90_000).await.unwrap();
    store.record_failure("purge-fail-old", 19_000, 1_000).await.unwrap();
    store.record_failure("purge-fail-live", 19_000, 71_000).await.unwrap();
    // A revoked grant is remembered as long as its access tokens may live.
    store.revoke_grant(&"g-purge-at-old".into(), 1_000, 20_000).await.unwrap();
    store.revoke_grant(&"g-purge-at-live".into(), 1_000, 90_000).await.unwrap();

    let mut total = 0;
    loop {
        let purged = store.purge_expired(50_000, 2).await.unwrap();
        if purged == 0 {
            break;
        }
        total += purged;
    }
    assert!(total >= 7, "purged {total}");

    assert_eq!(store.consume_code(&old_code, 0).await.unwrap(), Consumed::Missing);
    assert!(matches!(store.consume_code(&live_code, 0).await.unwrap(), Consumed::Fresh(_)));
    assert_eq!(store.refresh_token(&old_rt).await.unwrap(), Consumed::Missing);
    assert!(matches!(store.refresh_token(&live_rt).await.unwrap(), Consumed::Fresh(_)));
    assert_eq!(store.session(&old_session, 0).await.unwrap(), None);
    assert!(store.session(&live_session, 0).await.unwrap().is_some());
    assert_eq!(store.request("purge-req-old", 0).await.unwrap(), None);
    assert!(store.request("purge-req-live", 0).await.unwrap().is_some());
    assert_eq!(store.failures("purge-fail-old", 0).await.unwrap(), 0);
    assert_eq!(store.failures("purge-fail-live", 0).await.unwrap(), 1);
    assert!(
        !store.is_revoked("at", Some(&"g-purge-at-old".into())).await.unwrap(),
        "its tokens have expired"
    );
    assert!(store.is_revoked("at", Some(&"g-purge-at-live".into())).await.unwrap());
}

/// `put_clients_from` records the source and replaces it; `put_clients` inserts
/// `Config`; `client_sources` lists every client by id.
pub async fn client_sources_are_recorded_and_listed(store: &dyn Store) {
    use crate::store::Source;
    let by_id = |sources: Vec<(ClientId, Source)>, id: &str| {
        sources.into_iter().find(|(client_id, _)| client_id.as_str() == id).map(|(_, source)| source)
    };
    store.put_clients(&[service_client("src-plain", &["api1.read"])]).await.unwrap();
    store.put_clients_from(Source::Dynamic, &[service_client("src-dyn", &["api1.read"])]).await.unwrap();
    store.put_clients_from(Source::Config, &[service_client("src-conf", &["api1.read"])]).await.unwrap();
    let sources = store.client_sources().await.unwrap();
    let ids: Vec<&str> = sources.iter().map(|(id, _)| id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "ordered by id");
    assert_eq!(by_id(sources.clone(), "src-plain"), Some(Source::Config));
    assert_eq!(by_id(sources.clone(), "src-dyn"), Some(Source::Dynamic));
    assert_eq!(by_id(sources, "src-conf"), Some(Source::Config));
    store.put_clients_from(Source::Config, &[service_client("src-dyn", &["api1.read"])]).await.unwrap();
    assert_eq!(by_id(store.client_sources().await.unwrap(), "src-dyn"), Some(Source::Config));
}

/// A dynamically registered client (RFC 7591) reads back with its registration (the
/// hash of its registration access token, its metadata) and source; a replacement
/// (RFC 7592 §2.2) overwrites all of it; removal forgets it.
pub async fn a_registered_client_keeps_its_registration_and_is_replaced_whole(store: &dyn Store) {
    use crate::registration::{ClientMetadata, Registration};
    use crate::store::Source;
    let mut client = service_client("reg-dyn", &["api1.read"]);
    client.registration = Some(Registration {
        access_token: SecretHash::of("rat-1"),
        issued_at: 1_000,
        metadata: ClientMetadata {
            redirect_uris: vec!["https://agent.example/cb".into()],
            client_name: Some("Agent".into()),
            contacts: vec!["ops@agent.example".into()],
            ..ClientMetadata::default()
        },
    });
    store.put_clients_from(Source::Dynamic, std::slice::from_ref(&client)).await.unwrap();
    let read = store.client(&ClientId("reg-dyn".into())).await.unwrap().unwrap();
    assert_eq!(read, client);
    assert!(read.registration.as_ref().unwrap().access_token.matches("rat-1"));
    let mut replaced = client.clone();
    replaced.registration.as_mut().unwrap().access_token = SecretHash::of("rat-2");
    replaced.redirect_uris = vec!["https://agent.example/cb2".into()];
    store.put_clients_from(Source::Dynamic, std::slice::from_ref(&replaced)).await.unwrap();
    let read = store.client(&ClientId("reg-dyn".into())).await.unwrap().unwrap();
    assert_eq!(read, replaced);
    assert!(!read.registration.as_ref().unwrap().access_token.matches("rat-1"), "the old token is gone");
    let sources = store.client_sources().await.unwrap();
    assert!(sources.contains(&(ClientId("reg-dyn".into()), Source::Dynamic)));
    assert!(store.remove_client(&ClientId("reg-dyn".into()), 2_000).await.unwrap());
    assert!(store.client(&ClientId("reg-dyn".into())).await.unwrap().is_none());
}

/// Removing a client deletes it and revokes the grants of its refresh tokens and codes,
/// and its consents; another client's grant and consent stay.
pub async fn removing_a_client_revokes_its_grants_and_consents_only(store: &dyn Store) {
    use crate::store::Source;
    let gone = ClientId("rm-client".into());
    store.put_clients_from(Source::Config, &[service_client("rm-client", &["api1.read"])]).await.unwrap();
    store.put_clients_from(Source::Config, &[service_client("rm-kept", &["api1.read"])]).await.unwrap();
    let record =
        |grant: &str, client: &str| RefreshRecord { client_id: client.into(), ..refresh(grant, 100) };
    let (rt_gone, rt_kept) = (SecretHash::of("rm-client-rt"), SecretHash::of("rm-kept-rt"));
    store.put_refresh_token(&rt_gone, &record("g-rm-client", "rm-client")).await.unwrap();
    store.put_refresh_token(&rt_kept, &record("g-rm-kept", "rm-kept")).await.unwrap();
    let code = SecretHash::of("rm-client-code");
    let grant = PendingGrant { client_id: "rm-client".into(), ..pending_grant("g-rm-client-code") };
    store.put_code(&code, &grant, 10_000).await.unwrap();
    store.put_consent("rm-user", "rm-client", &["openid".into()]).await.unwrap();
    store.put_consent("rm-user", "rm-kept", &["openid".into()]).await.unwrap();

    assert!(store.remove_client(&gone, 150).await.unwrap());
    assert_eq!(store.client(&gone).await.unwrap(), None);
    assert!(!store.client_sources().await.unwrap().iter().any(|(id, _)| *id == gone));
    assert_eq!(
        store.refresh_token(&rt_gone).await.unwrap(),
        Consumed::Replayed { grant_id: "g-rm-client".into() }
    );
    assert!(store.is_revoked("g-rm-client.at", Some(&"g-rm-client".into())).await.unwrap());
    assert_eq!(
        store.consume_code(&code, 160).await.unwrap(),
        Consumed::Replayed { grant_id: "g-rm-client-code".into() }
    );
    assert!(store.consented_scopes("rm-user", "rm-client").await.unwrap().is_empty());
    assert_eq!(store.refresh_token(&rt_kept).await.unwrap(), Consumed::Fresh(record("g-rm-kept", "rm-kept")));
    assert!(!store.is_revoked("g-rm-kept.at", Some(&"g-rm-kept".into())).await.unwrap());
    assert_eq!(store.consented_scopes("rm-user", "rm-kept").await.unwrap(), vec!["openid".to_owned()]);
    assert!(!store.remove_client(&gone, 170).await.unwrap(), "already gone");
}

fn user(username: &str, subject: &str) -> User {
    User {
        subject: subject.into(),
        username: username.into(),
        password_hash: "$argon2id$x".into(),
        claims: serde_json::Map::new(),
    }
}

/// `put_user` inserts `Cli` and keeps the source of a user it replaces;
/// `put_user_from` sets it.
pub async fn user_sources_are_recorded_and_kept_by_put_user(store: &dyn Store) {
    use crate::store::Source;
    let source_of = |sources: Vec<(String, Source)>, name: &str| {
        sources.into_iter().find(|(username, _)| username == name).map(|(_, source)| source)
    };
    store.put_user(&user("src-cli", "src-cli-sub")).await.unwrap();
    store.put_user_from(&user("src-file", "src-file-sub"), Source::Config).await.unwrap();
    let sources = store.user_sources().await.unwrap();
    assert_eq!(source_of(sources.clone(), "src-cli"), Some(Source::Cli));
    assert_eq!(source_of(sources, "src-file"), Some(Source::Config));
    let mut changed = user("src-file", "src-file-sub");
    changed.password_hash = "$argon2id$changed".into();
    store.put_user(&changed).await.unwrap();
    assert_eq!(source_of(store.user_sources().await.unwrap(), "src-file"), Some(Source::Config));
    assert_eq!(store.user_by_username("src-file").await.unwrap(), Some(changed));
    store.put_user_from(&user("src-cli", "src-cli-sub"), Source::Config).await.unwrap();
    assert_eq!(source_of(store.user_sources().await.unwrap(), "src-cli"), Some(Source::Config));
}

/// Removing a user deletes it and revokes the grants of its refresh tokens and codes,
/// its sessions and consents; another user's stay.
pub async fn removing_a_user_revokes_its_grants_sessions_and_consents_only(store: &dyn Store) {
    use crate::store::Source;
    store.put_user_from(&user("rm-gone", "rm-gone-sub"), Source::Config).await.unwrap();
    store.put_user(&user("rm-stays", "rm-stays-sub")).await.unwrap();
    let record =
        |grant: &str, subject: &str| RefreshRecord { subject: subject.into(), ..refresh(grant, 100) };
    let (rt_gone, rt_kept) = (SecretHash::of("rm-gone-rt"), SecretHash::of("rm-stays-rt"));
    store.put_refresh_token(&rt_gone, &record("g-rm-gone", "rm-gone-sub")).await.unwrap();
    store.put_refresh_token(&rt_kept, &record("g-rm-stays", "rm-stays-sub")).await.unwrap();
    let code = SecretHash::of("rm-gone-code");
    let grant = PendingGrant { subject: "rm-gone-sub".into(), ..pending_grant("g-rm-gone-code") };
    store.put_code(&code, &grant, 10_000).await.unwrap();
    let session_of = |subject: &str| Session { subject: subject.into(), ..session("sid-rm", 10_000) };
    let (s_gone, s_kept) = (SecretHash::of("rm-gone-session"), SecretHash::of("rm-stays-session"));
    store.put_session(&s_gone, &session_of("rm-gone-sub")).await.unwrap();
    store.put_session(&s_kept, &session_of("rm-stays-sub")).await.unwrap();
    store.put_consent("rm-gone-sub", "web", &["openid".into()]).await.unwrap();
    store.put_consent("rm-stays-sub", "web", &["openid".into()]).await.unwrap();

    let removed = store.remove_user("rm-gone", 150).await.unwrap();
    assert_eq!(removed, Some(user("rm-gone", "rm-gone-sub")));
    assert_eq!(store.user_by_username("rm-gone").await.unwrap(), None);
    assert_eq!(store.user_by_subject("rm-gone-sub").await.unwrap(), None);
    assert_eq!(
        store.refresh_token(&rt_gone).await.unwrap(),
        Consumed::Replayed { grant_id: "g-rm-gone".into() }
    );
    assert!(store.is_revoked("g-rm-gone.at", Some(&"g-rm-gone".into())).await.unwrap());
    assert_eq!(
        store.consume_code(&code, 160).await.unwrap(),
        Consumed::Replayed { grant_id: "g-rm-gone-code".into() }
    );
    assert_eq!(store.session(&s_gone, 160).await.unwrap(), None);
    assert!(store.consented_scopes("rm-gone-sub", "web").await.unwrap().is_empty());

    assert_eq!(
        store.refresh_token(&rt_kept).await.unwrap(),
        Consumed::Fresh(record("g-rm-stays", "rm-stays-sub"))
    );
    assert_eq!(store.session(&s_kept, 160).await.unwrap(), Some(session_of("rm-stays-sub")));
    assert_eq!(store.consented_scopes("rm-stays-sub", "web").await.unwrap(), vec!["openid".to_owned()]);
    assert!(store.user_by_username("rm-stays").await.unwrap().is_some());
    assert_eq!(store.remove_user("rm-gone", 170).await.unwrap(), None, "already gone");
}

/// What the rightful client presents for [`pending_grant`]'s code (RFC 7636 App. B).
fn rightful_presentation() -> CodePresentation {
    CodePresentation {
        client_id: "web".into(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: crate::secret::Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        dpop_jkt: None,
    }
}

/// A redemption with the wrong client, `redirect_uri`, verifier or DPoP key is refused
/// and leaves the code unused; the rightful one then redeems it, once.
pub async fn a_code_presented_wrongly_stays_unused(store: &dyn Store) {
    let code = SecretHash::of("code-presented-wrongly");
    let grant = PendingGrant { dpop_jkt: Some("jkt-1".into()), ..pending_grant("g-code-wrongly") };
    store.put_code(&code, &grant, 200).await.unwrap();
    let rightful = CodePresentation { dpop_jkt: Some("jkt-1".into()), ..rightful_presentation() };
    let wrong = [
        (CodePresentation { client_id: "other".into(), ..rightful.clone() }, CodeMismatch::Client),
        (CodePresentation { redirect_uri: None, ..rightful.clone() }, CodeMismatch::RedirectUri),
        (
            CodePresentation { redirect_uri: Some("https://app.example/other".into()), ..rightful.clone() },
            CodeMismatch::RedirectUri,
        ),
        (
            CodePresentation {
                code_verifier: crate::secret::Secret::new("x".repeat(43)),
                ..rightful.clone()
            },
            CodeMismatch::CodeVerifier,
        ),
        (CodePresentation { dpop_jkt: None, ..rightful.clone() }, CodeMismatch::DpopKey),
        (CodePresentation { dpop_jkt: Some("jkt-2".into()), ..rightful.clone() }, CodeMismatch::DpopKey),
    ];
    for (presented, mismatch) in wrong {
        assert_eq!(store.redeem_code(&code, &presented, 100).await.unwrap(), Err(mismatch));
    }
    assert_eq!(store.redeem_code(&code, &rightful, 100).await.unwrap(), Ok(Consumed::Fresh(grant)));
    assert_eq!(
        store.redeem_code(&code, &rightful, 100).await.unwrap(),
        Ok(Consumed::Replayed { grant_id: "g-code-wrongly".into() })
    );
    // Expired and unknown codes are `Missing` however they are presented.
    assert_eq!(store.redeem_code(&code, &rightful, 200).await.unwrap(), Ok(Consumed::Missing));
    let unknown = SecretHash::of("code-never-issued");
    assert_eq!(store.redeem_code(&unknown, &rightful, 100).await.unwrap(), Ok(Consumed::Missing));
}

/// 40 racing wrong redemptions and one rightful one: the rightful one is `Fresh`,
/// the wrong ones are refused (or, after it, `Replayed`), never `Fresh`.
pub async fn racing_wrong_presentations_do_not_burn_the_code(store: Arc<dyn Store>) {
    let code = SecretHash::of("code-racing-wrongly");
    store.put_code(&code, &pending_grant("g-code-racing-wrongly"), 200).await.unwrap();
    let outcomes: Vec<_> = (0..41)
        .map(|i| {
            let store = store.clone();
            let presented = if i == 20 {
                rightful_presentation()
            } else {
                CodePresentation {
                    code_verifier: crate::secret::Secret::new(format!("{i:0>43}")),
                    ..rightful_presentation()
                }
            };
            tokio::spawn(async move { (i, store.redeem_code(&code, &presented, 100).await.unwrap()) })
        })
        .collect();
    for outcome in outcomes {
        match outcome.await.unwrap() {
            (20, outcome) => assert_eq!(outcome, Ok(Consumed::Fresh(pending_grant("g-code-racing-wrongly")))),
            (_, Err(mismatch)) => assert_eq!(mismatch, CodeMismatch::CodeVerifier),
            (_, Ok(Consumed::Replayed { grant_id })) => assert_eq!(grant_id, "g-code-racing-wrongly".into()),
            (i, other) => panic!("wrong redemption {i} saw {other:?}"),
        }
    }
}

/// 80 redemptions of 60 codes at once (a store may carry them in one statement): each
/// is answered as it would be alone. Rightful ones are `Fresh` with their own code's
/// grant; wrong ones are refused and leave their code unused; expired ones are
/// `Missing`; a code presented twice is `Fresh` once and `Replayed` once.
pub async fn redemptions_of_many_codes_at_once_are_each_answered_as_if_alone(store: Arc<dyn Store>) {
    #[derive(Clone, Copy, Debug)]
    enum Case {
        Rightful,
        WrongVerifier,
        Expired,
        Twice,
    }
    let case_of = |k: usize| [Case::Rightful, Case::WrongVerifier, Case::Expired, Case::Twice][k % 4];
    let code = |k: usize| SecretHash::of(&format!("code-at-once-{k}"));
    let grant = |k: usize| pending_grant(&format!("g-at-once-{k}"));
    for k in 0..60 {
        let expires_at = if matches!(case_of(k), Case::Expired) { 100 } else { 200 };
        store.put_code(&code(k), &grant(k), expires_at).await.unwrap();
    }
    let wrong = CodePresentation {
        code_verifier: crate::secret::Secret::new("w".repeat(43)),
        ..rightful_presentation()
    };
    let mut redemptions = Vec::new();
    for k in 0..60 {
        let copies = if matches!(case_of(k), Case::Twice) { 2 } else { 1 };
        for _ in 0..copies {
            let presented = if matches!(case_of(k), Case::WrongVerifier) {
                wrong.clone()
            } else {
                rightful_presentation()
            };
            let store = store.clone();
            let hash = code(k);
            redemptions.push(tokio::spawn(async move {
                (k, store.redeem_code(&hash, &presented, 100).await.unwrap())
            }));
        }
    }
    let mut fresh_twice = std::collections::HashMap::<usize, usize>::new();
    for redemption in redemptions {
        let (k, outcome) = redemption.await.unwrap();
        match (case_of(k), outcome) {
            (Case::Rightful, outcome) => assert_eq!(outcome, Ok(Consumed::Fresh(grant(k))), "code {k}"),
            (Case::WrongVerifier, outcome) => {
                assert_eq!(outcome, Err(CodeMismatch::CodeVerifier), "code {k}")
            }
            (Case::Expired, outcome) => assert_eq!(outcome, Ok(Consumed::Missing), "code {k}"),
            (Case::Twice, Ok(Consumed::Fresh(redeemed))) => {
                assert_eq!(redeemed, grant(k), "code {k}");
                *fresh_twice.entry(k).or_default() += 1;
            }
            (Case::Twice, outcome) => {
                assert_eq!(outcome, Ok(Consumed::Replayed { grant_id: grant(k).grant_id }), "code {k}");
            }
        }
    }
    for k in (0..60).filter(|k| matches!(case_of(*k), Case::Twice)) {
        assert_eq!(fresh_twice.get(&k), Some(&1), "code {k}, presented twice, is fresh once");
    }
    for k in (0..60).filter(|k| matches!(case_of(*k), Case::WrongVerifier)) {
        assert_eq!(
            store.redeem_code(&code(k), &rightful_presentation(), 100).await.unwrap(),
            Ok(Consumed::Fresh(grant(k))),
            "code {k}, presented wrongly, stayed unused"
        );
    }
}

/// `redeemed_code` (read only for the retry of an in-doubt redemption) returns the
/// grant of a used, live code, and nothing for an unused, expired or unknown one.
pub async fn a_redeemed_code_reads_back_its_grant_until_it_expires(store: &dyn Store) {
    let code = SecretHash::of("code-read-back");
    let grant = pending_grant("g-code-read-back");
    store.put_code(&code, &grant, 200).await.unwrap();
    assert_eq!(store.redeemed_code(&code, 100).await.unwrap(), None, "unused");
    assert_eq!(
        store.redeem_code(&code, &rightful_presentation(), 100).await.unwrap(),
        Ok(Consumed::Fresh(grant.clone()))
    );
    assert_eq!(store.redeemed_code(&code, 100).await.unwrap(), Some(grant));
    assert_eq!(store.redeemed_code(&code, 200).await.unwrap(), None, "expired");
    assert_eq!(store.redeemed_code(&SecretHash::of("code-never-read"), 100).await.unwrap(), None);
}

fn totp_factor(confirmed: bool, last_step: i64) -> crate::store::TotpFactor {
    crate::store::TotpFactor { secret: vec![7; 20], sealed: false, confirmed, last_step, created_at: 100 }
}

/// RFC 6238 §5.2: each step's code is accepted once, never an older one; an enrolment
/// in progress is confirmed by its first code and never replaces a confirmed app.
pub async fn totp_steps_are_accepted_once_and_enrolment_never_replaces_a_confirmed_app(store: &dyn Store) {
    let user = "totp-user";
    assert!(store.put_totp(user, &totp_factor(false, 10)).await.unwrap());
    assert!(!store.accept_totp_step(user, 11, false).await.unwrap(), "unconfirmed: no sign-in");
    assert!(store.accept_totp_step(user, 11, true).await.unwrap(), "the confirming code");
    let factor = store.totp(user).await.unwrap().unwrap();
    assert!(factor.confirmed);
    assert_eq!(factor.last_step, 11);
    assert_eq!(factor.secret, vec![7; 20]);
    assert!(!store.accept_totp_step(user, 11, false).await.unwrap(), "the confirming code counts as used");
    assert!(!store.accept_totp_step(user, 10, false).await.unwrap(), "an older step");
    assert!(store.accept_totp_step(user, 12, false).await.unwrap());
    assert!(!store.accept_totp_step(user, 13, true).await.unwrap(), "confirmed: no second confirmation");
    assert!(!store.put_totp(user, &totp_factor(false, 0)).await.unwrap(), "enrolment cannot replace it");
    assert!(store.totp(user).await.unwrap().unwrap().confirmed);
    assert!(store.put_totp(user, &totp_factor(true, 0)).await.unwrap(), "the command line replaces it");
    assert!(store.delete_totp(user).await.unwrap());
    assert!(!store.delete_totp(user).await.unwrap());
    assert_eq!(store.totp(user).await.unwrap(), None);
    assert!(!store.accept_totp_step(user, 20, false).await.unwrap(), "no app");
}

/// 40 racing sign-ins with the same code: one is accepted, on one instance or many.
pub async fn forty_racing_uses_of_one_totp_step_have_one_winner(store: Arc<dyn Store>) {
    let user = "totp-racer";
    store.put_totp(user, &totp_factor(true, 0)).await.unwrap();
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.accept_totp_step(user, 5, false).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1);
}

/// 40 racing uses of one recovery code: one wins; the other codes stay.
pub async fn forty_racing_uses_of_one_recovery_code_have_one_winner(store: Arc<dyn Store>) {
    let user = "recovery-racer";
    let codes: Vec<SecretHash> = (0..10).map(|i| SecretHash::of(&format!("rc-{i}"))).collect();
    store.put_recovery_codes(user, &codes).await.unwrap();
    assert_eq!(store.recovery_codes_left(user).await.unwrap(), 10);
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.use_recovery_code(user, &SecretHash::of("rc-3")).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(store.recovery_codes_left(user).await.unwrap(), 9);
    assert!(!store.use_recovery_code("someone-else", &SecretHash::of("rc-4")).await.unwrap(), "per user");
    store.put_recovery_codes(user, &[SecretHash::of("new")]).await.unwrap();
    assert!(!store.use_recovery_code(user, &SecretHash::of("rc-4")).await.unwrap(), "replaced");
    assert_eq!(store.recovery_codes_left(user).await.unwrap(), 1);
}

fn passkey(id: &str, subject: &str, created_at: i64) -> crate::store::PasskeyRecord {
    crate::store::PasskeyRecord {
        credential_id: id.into(),
        subject: subject.into(),
        name: format!("key {id}"),
        credential: format!("{{\"counter\":{created_at}}}"),
        created_at,
        last_used_at: None,
    }
}

/// A credential id is registered once, and only its owner uses or removes it.
pub async fn passkeys_belong_to_one_user_and_are_listed_used_and_removed(store: &dyn Store) {
    assert!(store.add_passkey(&passkey("cred-b", "pk-user", 200)).await.unwrap());
    assert!(store.add_passkey(&passkey("cred-a", "pk-user", 100)).await.unwrap());
    assert!(!store.add_passkey(&passkey("cred-a", "pk-other", 300)).await.unwrap(), "taken");
    let listed = store.passkeys("pk-user").await.unwrap();
    assert_eq!(listed.iter().map(|p| p.credential_id.as_str()).collect::<Vec<_>>(), ["cred-a", "cred-b"]);
    assert_eq!(store.passkey("cred-a").await.unwrap().unwrap().subject, "pk-user");
    assert!(!store.touch_passkey("pk-other", "cred-a", "{}", 500).await.unwrap(), "not theirs");
    assert!(store.touch_passkey("pk-user", "cred-a", "{\"counter\":7}", 500).await.unwrap());
    let used = store.passkey("cred-a").await.unwrap().unwrap();
    assert_eq!((used.credential.as_str(), used.last_used_at), ("{\"counter\":7}", Some(500)));
    assert!(!store.delete_passkey("pk-other", "cred-a").await.unwrap(), "not theirs");
    assert!(store.delete_passkey("pk-user", "cred-a").await.unwrap());
    assert_eq!(store.passkey("cred-a").await.unwrap(), None);
    assert!(store.delete_factors("pk-user").await.unwrap());
    assert!(store.passkeys("pk-user").await.unwrap().is_empty());
    assert!(!store.delete_factors("pk-user").await.unwrap(), "nothing left");
}

/// The account page lists a user's live sessions and ends one by `sid`.
pub async fn sessions_are_listed_and_ended_per_user(store: &dyn Store) {
    let of = |subject: &str, sid: &str, auth_time: i64, expires_at: i64| Session {
        subject: subject.into(),
        auth_time,
        ..session(sid, expires_at)
    };
    store.put_session(&SecretHash::of("ls-1"), &of("ls-user", "ls-sid-2", 200, 10_000)).await.unwrap();
    store.put_session(&SecretHash::of("ls-2"), &of("ls-user", "ls-sid-1", 100, 10_000)).await.unwrap();
    store.put_session(&SecretHash::of("ls-3"), &of("ls-user", "ls-sid-old", 50, 150)).await.unwrap();
    store.put_session(&SecretHash::of("ls-4"), &of("ls-other", "ls-sid-x", 100, 10_000)).await.unwrap();
    let listed = store.sessions_of("ls-user", 1_000).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.sid.as_str()).collect::<Vec<_>>(), ["ls-sid-1", "ls-sid-2"]);
    assert_eq!(listed[0].amr, ["pwd", "otp", "mfa"], "amr round-trips");
    assert!(!store.end_session_of("ls-other", "ls-sid-1").await.unwrap(), "not theirs");
    assert!(store.end_session_of("ls-user", "ls-sid-1").await.unwrap());
    assert_eq!(store.session(&SecretHash::of("ls-2"), 1_000).await.unwrap(), None);
    assert!(store.session(&SecretHash::of("ls-1"), 1_000).await.unwrap().is_some());
    assert!(store.session(&SecretHash::of("ls-4"), 1_000).await.unwrap().is_some());
}

/// Removing a user takes their second factors with them.
pub async fn removing_a_user_removes_its_second_factors(store: &dyn Store) {
    store.put_user(&user("factor-gone", "factor-gone-sub")).await.unwrap();
    store.put_totp("factor-gone-sub", &totp_factor(true, 0)).await.unwrap();
    store.put_recovery_codes("factor-gone-sub", &[SecretHash::of("x")]).await.unwrap();
    store.add_passkey(&passkey("cred-gone", "factor-gone-sub", 100)).await.unwrap();
    store.put_totp("factor-kept-sub", &totp_factor(true, 0)).await.unwrap();
    store.remove_user("factor-gone", 1_000).await.unwrap().unwrap();
    assert_eq!(store.totp("factor-gone-sub").await.unwrap(), None);
    assert_eq!(store.recovery_codes_left("factor-gone-sub").await.unwrap(), 0);
    assert_eq!(store.passkey("cred-gone").await.unwrap(), None);
    assert!(store.totp("factor-kept-sub").await.unwrap().is_some(), "others keep theirs");
}

/// The rules a device or CIBA poll of client `tv` brings (see `decoupled::poll`).
fn poll_rules(owner: &str) -> super::PollRules {
    super::PollRules {
        owner: serde_json::json!({ "client_id": owner }),
        kept_after_expiry: 3600,
        decided: vec!["approved".into(), "denied".into()],
        interval: 5,
        step: 5,
        pace_until: 20_000,
    }
}

fn polled_request(status: &str) -> serde_json::Value {
    serde_json::json!({ "client_id": "tv", "decision": { "status": status, "subject": "alice" } })
}

/// RFC 8628 §3.5: a poll sooner than the interval is too soon and grows it by the step.
pub async fn polls_are_paced_and_a_too_soon_poll_grows_the_interval(store: &dyn Store) {
    use super::Polled;
    let rules = poll_rules("tv");
    let pending = polled_request("pending");
    store.put_polled("device:pace-a", "pending", &pending, 10_000).await.unwrap();
    store.put_polled("device:pace-b", "pending", &pending, 10_000).await.unwrap();
    let waiting = Polled::Waiting(pending);
    let poll = async |key: &str, at| store.poll(key, at, &rules).await.unwrap();
    assert_eq!(poll("device:pace-a", 100).await, waiting, "first poll");
    assert_eq!(poll("device:pace-a", 102).await, Polled::TooSoon { interval: 10 });
    assert_eq!(poll("device:pace-a", 108).await, Polled::TooSoon { interval: 15 }, "6 s < 10 s");
    assert_eq!(poll("device:pace-a", 123).await, waiting, "15 s after the last poll");
    assert_eq!(poll("device:pace-a", 124).await, Polled::TooSoon { interval: 20 }, "the interval stayed 15");
    assert_eq!(poll("device:pace-b", 124).await, waiting, "per request");
}

/// 40 polls of one waiting request at one moment: exactly one is in time, on any backend.
pub async fn forty_racing_polls_of_one_request_have_one_in_time(store: Arc<dyn Store>) {
    use super::Polled;
    store.put_polled("device:pace-race", "pending", &polled_request("pending"), 10_000).await.unwrap();
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.poll("device:pace-race", 500, &poll_rules("tv")).await.unwrap() })
        })
        .collect();
    let mut in_time = 0;
    let mut largest = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Polled::Waiting(_) => in_time += 1,
            Polled::TooSoon { interval } => largest = largest.max(interval),
            other => panic!("a racing poll saw {other:?}"),
        }
    }
    assert_eq!(in_time, 1);
    assert_eq!(largest, 5 + 39 * 5, "each too-soon poll grew the interval once");
}

/// RFC 8628 §3.4–3.5: one poll finds, paces and (once decided) takes the request, in
/// one step; an undecided or unknown-shaped request stays where it is.
pub async fn a_poll_paces_and_redeems_a_decided_request_in_one_step(store: &dyn Store) {
    use super::Polled;
    let rules = poll_rules("tv");
    let pending = polled_request("pending");
    store.put_polled("device:poll-1", "pending", &pending, 10_000).await.unwrap();
    assert_eq!(store.poll("device:poll-1", 100, &rules).await.unwrap(), Polled::Waiting(pending.clone()));
    assert_eq!(store.poll("device:poll-1", 101, &rules).await.unwrap(), Polled::TooSoon { interval: 10 });
    let approved = polled_request("approved");
    assert!(store.decide_polled("device:poll-1", "approved", &approved, 150).await.unwrap());
    assert!(!store.decide_polled("device:poll-1", "denied", &pending, 150).await.unwrap(), "decided once");
    // Decided, but too soon: slowed down, not taken.
    assert_eq!(store.poll("device:poll-1", 105, &rules).await.unwrap(), Polled::TooSoon { interval: 15 });
    assert_eq!(store.polled("device:poll-1", 150).await.unwrap(), Some(approved.clone()), "still there");
    assert_eq!(store.poll("device:poll-1", 200, &rules).await.unwrap(), Polled::Taken(approved));
    assert_eq!(store.poll("device:poll-1", 300, &rules).await.unwrap(), Polled::Missing, "taken once");
    assert_eq!(store.polled("device:poll-1", 300).await.unwrap(), None);
    // A state no rule knows (damaged, or written by another version) is never taken.
    let odd = serde_json::json!({ "client_id": "tv", "decision": { "status": "maybe" } });
    store.put_polled("device:poll-odd", "maybe", &odd, 10_000).await.unwrap();
    assert_eq!(store.poll("device:poll-odd", 100, &rules).await.unwrap(), Polled::Waiting(odd.clone()));
    assert_eq!(store.polled("device:poll-odd", 100).await.unwrap(), Some(odd));
    assert_eq!(store.poll("device:never", 100, &rules).await.unwrap(), Polled::Missing);
}

/// Another client's poll, or one after the request itself expired, is answered and
/// changes nothing: no pace is recorded, nothing is taken.
pub async fn a_foreign_or_expired_poll_changes_nothing(store: &dyn Store) {
    use super::Polled;
    let approved = polled_request("approved");
    store.put_polled("device:poll-2", "approved", &approved, 1_000 + 3600).await.unwrap();
    assert_eq!(
        store.poll("device:poll-2", 100, &poll_rules("other")).await.unwrap(),
        Polled::Foreign(approved.clone())
    );
    // The owner's poll at the same moment is its first: in time, and it takes.
    assert_eq!(
        store.poll("device:poll-2", 100, &poll_rules("tv")).await.unwrap(),
        Polled::Taken(approved.clone())
    );
    store.put_polled("device:poll-3", "approved", &approved, 1_000 + 3600).await.unwrap();
    let expired = Polled::Expired(approved.clone());
    assert_eq!(store.poll("device:poll-3", 1_000, &poll_rules("tv")).await.unwrap(), expired);
    assert_eq!(store.poll("device:poll-3", 4_000, &poll_rules("tv")).await.unwrap(), expired);
    assert_eq!(store.polled("device:poll-3", 1_000).await.unwrap(), Some(approved), "kept for late polls");
    assert_eq!(
        store.poll("device:poll-3", 5_000, &poll_rules("tv")).await.unwrap(),
        Polled::Missing,
        "row gone"
    );
}

/// 40 polls of one approved request at one moment, on any backend: exactly one takes
/// it; every other is too soon or finds it gone, and none sees it still waiting.
pub async fn forty_racing_polls_of_an_approved_request_redeem_it_once(store: Arc<dyn Store>) {
    use super::Polled;
    let approved = polled_request("approved");
    store.put_polled("device:poll-race", "approved", &approved, 10_000).await.unwrap();
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.poll("device:poll-race", 500, &poll_rules("tv")).await.unwrap() })
        })
        .collect();
    let (mut taken, mut too_soon, mut missing) = (0, 0, 0);
    for racer in racers {
        match racer.await.unwrap() {
            Polled::Taken(document) => {
                assert_eq!(document, approved);
                taken += 1;
            }
            Polled::TooSoon { .. } => too_soon += 1,
            Polled::Missing => missing += 1,
            other => panic!("a racing poll saw {other:?}"),
        }
    }
    assert_eq!(taken, 1, "redeemed once ({too_soon} too soon, {missing} after it was gone)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        run_all(Arc::new(MemoryStore::default())).await;
    }
}
