-- The credential a console ticket was bought with (an access token's session or an API
-- token): an open console ends when that credential does.
ALTER TABLE console_tickets ADD COLUMN session_id TEXT;
ALTER TABLE console_tickets ADD COLUMN api_token_id TEXT;
