-- Shared setup for the pg_regress suite: the extension, the two virtual
-- units the tests use, and a helper that reports a statement's SQLSTATE.
CREATE EXTENSION wallet;
SELECT wallet.add_currency('COIN', 0, 'Coin');
SELECT wallet.add_currency('DIAMOND', 0, 'Diamond');

-- sqlstate_of(q): runs q; 'ok', or 'SQLSTATE: message' when it fails.
CREATE FUNCTION public.sqlstate_of(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
