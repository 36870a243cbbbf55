//! The TLS workload: connection setups per second through a proxy that does not
//! terminate TLS. Both ends live in the harness (rustls, a dev-dependency only): two TLS
//! servers, `a` (the route [`SNI_NAME`] picks) and `fallback`, each a few blocking threads
//! that accept, complete a full handshake (TLS 1.3, X25519, an ECDSA P-256 certificate made
//! by `openssl req` at the start of the run; no tickets, no resumption, so every setup is
//! a full handshake), send one byte naming themselves and wait for the client to close.
//! A cycle is connect + handshake + that byte + close with RST; it fails when the byte
//! names the wrong server or the certificate is not ours.

use crate::rate::{self, ConnRate, Cycle};
use crate::sys::{Context, Pid};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server name the SNI route takes.
pub const SNI_NAME: &str = "a.bench.test";
/// Server threads per TLS backend (more than the client threads, so none waits).
const SERVER_THREADS: usize = 2 * rate::RATE_THREADS;

/// The two TLS backends and what a client needs to reach them.
pub struct TlsBackends {
    /// The server the SNI route picks; it answers `a`.
    pub a: SocketAddr,
    /// The server every other name goes to; it answers `f`.
    pub fallback: SocketAddr,
    client: Arc<ClientConfig>,
}

impl TlsBackends {
    /// Makes a certificate in `dir` with `openssl req` and starts both servers.
    pub fn start(dir: &Path) -> Result<TlsBackends, String> {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj"])
            .arg(format!("/CN={SNI_NAME}"))
            .arg("-addext")
            .arg(format!("subjectAltName=DNS:{SNI_NAME}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context(|| "run openssl req".into())?;
        if !status.success() {
            return Err(format!("openssl req failed ({status})"));
        }
        let cert =
            CertificateDer::from_pem_file(&cert).context(|| "read the certificate".into())?;
        let key = PrivateKeyDer::from_pem_file(&key).context(|| "read the key".into())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context(|| "TLS server versions".into())?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .context(|| "TLS server certificate".into())?;
        server.send_tls13_tickets = 0;
        let server = Arc::new(server);
        let verifier = Arc::new(PinnedCert {
            cert: cert.clone(),
            provider: Arc::clone(&provider),
        });
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context(|| "TLS client versions".into())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        client.resumption = rustls::client::Resumption::disabled();
        Ok(TlsBackends {
            a: serve(Arc::clone(&server), b'a')?,
            fallback: serve(server, b'f')?,
            client: Arc::new(client),
        })
    }

    /// Setups per second against `addr` (a proxy, or `a` itself for direct), each asking
    /// for [`SNI_NAME`] and expecting server `a` to answer.
    pub fn setup_rate(
        &self,
        addr: SocketAddr,
        run: Duration,
        proxy: &[Pid],
    ) -> Result<ConnRate, String> {
        let config = Arc::clone(&self.client);
        let cycle: Cycle = Arc::new(move |addr| handshake(addr, &config));
        rate::run(addr, run, proxy, cycle)
    }
}

/// Starts `SERVER_THREADS` threads accepting TLS clients on a fresh loopback port; each
/// client gets `label` once its handshake is done. The threads live as long as the harness.
fn serve(config: Arc<ServerConfig>, label: u8) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .context(|| "bind a TLS backend".into())?;
    let addr = listener
        .local_addr()
        .context(|| "TLS backend address".into())?;
    let listener = Arc::new(listener);
    for i in 0..SERVER_THREADS {
        let (listener, config) = (Arc::clone(&listener), Arc::clone(&config));
        std::thread::Builder::new()
            .name(format!("tls-{}-{i}", label as char))
            .spawn(move || {
                while let Ok((tcp, _)) = listener.accept() {
                    let _ = answer(tcp, &config, label);
                }
            })
            .context(|| "start a TLS backend thread".into())?;
    }
    Ok(addr)
}

/// One server side: handshake, `label`, then wait for the client's close.
fn answer(tcp: std::net::TcpStream, config: &Arc<ServerConfig>, label: u8) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let conn = rustls::ServerConnection::new(Arc::clone(config)).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&[label])?;
    tls.flush()?;
    let mut rest = [0u8; 64];
    while tls.read(&mut rest)? > 0 {}
    Ok(())
}

/// One client cycle: connect, full handshake naming [`SNI_NAME`], read the server's byte
/// (it must be `a`), close with RST. Returns connect start to that byte.
fn handshake(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<Duration> {
    let start = Instant::now();
    let tcp = rate::connect(addr)?;
    let name = ServerName::try_from(SNI_NAME).map_err(std::io::Error::other)?;
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut label = [0u8; 1];
    tls.read_exact(&mut label)?;
    let took = start.elapsed();
    crate::workloads::close_with_reset(&tls.sock);
    if label[0] == b'a' {
        Ok(took)
    } else {
        Err(std::io::Error::other(format!(
            "reached server {:?}, not a",
            label[0] as char
        )))
    }
}

/// Accepts exactly our certificate (the handshake signature is still checked), so a setup
/// counts only when it reached one of our servers.
#[derive(Debug)]
struct PinnedCert {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the bench certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
