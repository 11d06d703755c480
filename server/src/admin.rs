//! Command-line administration: `jo-server create-admin` and
//! `jo-server enroll-code`.

use anyhow::{Context, bail};

use jo_shared::doublekey::UserKey;

use crate::auth::password::PasswordHasher;
use crate::config::{Config, Secret};
use crate::db::users::{Conflict, NewUser, Role};
use crate::domain::{Email, PersonName, Username, check_new_password};

/// Creates an admin account (email counted as verified; two-factor
/// enrolment is forced at first login). Returns the new user id.
pub async fn create_admin(
    config: &Config,
    email: &str,
    username: &str,
    password: Secret,
) -> anyhow::Result<i64> {
    let email = Email::parse(email)
        .map_err(|k| anyhow::anyhow!("--email: {}", crate::i18n::Lang::En.t(k)))?;
    let username = Username::parse(username)
        .map_err(|k| anyhow::anyhow!("--username: {}", crate::i18n::Lang::En.t(k)))?;
    check_new_password(
        password.expose(),
        password.expose(),
        &[username.as_str(), email.as_str()],
    )
    .map_err(|k| anyhow::anyhow!("password: {}", crate::i18n::Lang::En.t(k)))?;
    let store = crate::startup::open_store(config).await?;
    let hash = PasswordHasher::new(config.argon2)?.hash(password).await?;
    let admin_name = PersonName::parse("Admin").map_err(|_| anyhow::anyhow!("name"))?;
    let user = NewUser {
        username: username.as_str().to_owned(),
        email: email.as_str().to_owned(),
        first_name: admin_name.as_str().to_owned(),
        last_name: admin_name.as_str().to_owned(),
        password_hash: hash,
        user_key: UserKey::generate().context("user key")?,
        role: Role::Admin,
        email_verified: true,
    };
    match store.create_user(user).await? {
        Ok(id) => Ok(id),
        Err(Conflict::Email) => bail!("an account with this email already exists"),
        Err(Conflict::Username) => bail!("this username is already taken"),
    }
}

/// Reads a password from stdin: the first line, without its line ending.
pub fn read_password(input: &mut impl std::io::BufRead) -> anyhow::Result<Secret> {
    let mut line = zeroize::Zeroizing::new(String::new());
    input
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let pw = line.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        bail!("no password on stdin (pipe it in, or set JO_ADMIN_PASSWORD)");
    }
    Ok(Secret::new(pw.to_owned()))
}

/// Creates a one-time scanner enrolment code valid `ttl_hours`, and returns it
/// (only its hash is stored).
pub async fn create_enrollment_code(config: &Config, ttl_hours: u32) -> anyhow::Result<String> {
    let store = crate::startup::open_store(config).await?;
    let code = crate::auth::tokens::random_enrollment_code()?;
    let hash = crate::auth::tokens::hash_enrollment_code(&code)
        .ok_or_else(|| anyhow::anyhow!("enrolment code format"))?;
    store
        .create_enrollment_code(hash, i64::from(ttl_hours) * 3600)
        .await?;
    Ok(code)
}

/// The fingerprint (hex) of the newest keyring statement in the keys
/// directory, which enrolment codes carry so that the gate pins it.
pub fn keyring_fingerprint(config: &Config) -> anyhow::Result<String> {
    let signer = jo_shared::keys::load_signer(&config.keys_dir)?;
    let (_, chain) = crate::trust::current(&config.keys_dir, &signer)?;
    let newest = chain
        .last()
        .ok_or_else(|| anyhow::anyhow!("empty keyring chain"))?;
    Ok(newest.fingerprint_hex()?)
}
