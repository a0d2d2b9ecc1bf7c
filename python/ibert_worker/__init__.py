"""The iBERT oracle worker: real Ibis behind a JSON-lines protocol (see docs/oracle-protocol.md)."""
