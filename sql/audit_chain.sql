-- The audit chain.  In a SQL_ASCII database (what initdb makes with the C
-- locale), which stores text bytes unchecked.  Records holding bytes that
-- are not UTF-8 are hashed as stored: converting them to UTF-8 failed
-- every seal from the first such record on, so nothing after it was ever
-- sealed (library 1.6.0; found by a review).  Nothing here prints those
-- bytes.
SELECT current_database() AS regress_db \gset
CREATE DATABASE wallet_regress_ascii ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c wallet_regress_ascii
CREATE EXTENSION wallet;
-- an owner in Latin-1 ("élodie"), through the API
SELECT wallet.open_account(convert_from('\xe96c6f646965'::bytea, 'SQL_ASCII'), 'USD') > 0 AS opened;
-- a byte that is never UTF-8, in an audited table of the application's
CREATE TABLE latin (s text);
SELECT wallet.audit_table('latin');
INSERT INTO latin VALUES (convert_from('\xff41'::bytea, 'SQL_ASCII'));
SELECT length(wallet.digest()) AS head_hex_digits;
SELECT (SELECT max(audit_through) FROM wallet.audit_seal) = (SELECT max(id) FROM wallet.audit_log) AS all_sealed;
SELECT check_name, ok FROM wallet.audit_verify() ORDER BY check_name;
-- an edit behind the triggers is still found
SET session_replication_role = replica;
UPDATE wallet.audit_log SET new_row = '{"s": "A"}' WHERE relation = 'public.latin';
RESET session_replication_role;
SELECT check_name, ok FROM wallet.audit_verify() WHERE check_name = 'audit_records';
-- digest() seals, and the sealer must run in READ COMMITTED: 25000 under
-- its own name (it named seal() before 1.6.0)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT wallet.digest();
ROLLBACK;
\c :regress_db
DROP DATABASE wallet_regress_ascii WITH (FORCE);
