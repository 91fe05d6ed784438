"""payment: charges and refunds cards (test tokens only) and keeps an append-only ledger in its own database."""
