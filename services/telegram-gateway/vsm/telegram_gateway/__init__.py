"""vsm telegram-gateway (gateway): a Telegram bot for people."""
