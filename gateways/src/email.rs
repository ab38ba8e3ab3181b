//! Receipts by e-mail over SMTP (lettre): `smtp://host:port` for a relay on the
//! network, `smtps://user:pass@host` or `smtp://…?tls=required` for TLS.

use async_trait::async_trait;
use commands::sessions::{MailError, Mailer};
use lettre::{
    message::{
        header::{ContentTransferEncoding, ContentType},
        Mailbox, SinglePart,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

/// An SMTP mailer.
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// From an SMTP URL and a sender address.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| format!("SMTP URL: {e}"))?.build();
        let from = from.parse().map_err(|e| format!("sender address {from:?}: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, to: &str, subject: &str, body: &str, message_id: &str) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|_| MailError::InvalidRecipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.to_owned()))
            .singlepart(
                // 8-bit UTF-8 text: a receipt stays readable in any mail client and in the raw message.
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .header(ContentTransferEncoding::EightBit)
                    .body(body.to_owned()),
            )
            .map_err(|_| MailError::Unbuildable)?;
        self.transport.send(message).await.map(drop).map_err(|e| smtp_error(&e))
    }
}

/// The typed failure of an SMTP exchange (its reply code, never its text).
fn smtp_error(error: &lettre::transport::smtp::Error) -> MailError {
    let code = error.status().and_then(|code| code.to_string().parse::<u16>().ok());
    match code {
        Some(code) if error.is_permanent() => MailError::Refused(code),
        Some(code) => MailError::Deferred(code),
        None => MailError::Unreachable,
    }
}
