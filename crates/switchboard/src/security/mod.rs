//! Handshake security: origin checks, rate limits, connection caps,
//! authentication and guards, run in that order before the handler.
