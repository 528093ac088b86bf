//! Brokers: how many instances act as one. The in-memory broker is the default.
