//! TLS termination settings for the listener: the certificate chain and key from
//! `[server.tls]`, read once at startup into a rustls `ServerConfig` that every shard's
//! acceptor shares (HTTP/1.1 only, via ALPN). A new certificate needs a restart; a reload
//! that changes `[server.tls]` is refused and says so.

use std::sync::Arc;

use anyhow::Context;
use only1mcp_shards::config::TlsConfig;

/// The rustls server config of `[server.tls]`.
pub fn server_config(t: &TlsConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_pem = std::fs::read(&t.cert)
        .with_context(|| format!("server.tls.cert: cannot read {}", t.cert))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("server.tls.cert: {} is not PEM", t.cert))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "server.tls.cert: no certificate in {}",
        t.cert
    );
    let key_pem =
        std::fs::read(&t.key).with_context(|| format!("server.tls.key: cannot read {}", t.key))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("server.tls.key: {} is not PEM", t.key))?
        .with_context(|| format!("server.tls.key: no private key in {}", t.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("server.tls: the key does not match the certificate, or is not supported")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
