-- The auth user PgBouncer looks session roles up with (config/pgbouncer/pgbouncer.ini).
-- Run once as a superuser in gowa-py's database:
--   psql -d gowa -v auth_user=gowa_pgbouncer -v auth_password="'...'" \
--     -f config/pgbouncer/auth.sql
-- and put the same user and password in /etc/pgbouncer/userlist.txt:
--   "gowa_pgbouncer" "..."
-- pg_shadow (the SCRAM verifiers) is readable by superusers only: the function runs as
-- its owner (the superuser running this) and answers for gowa-py's session roles
-- (gowa_r_<hash>) alone, so the auth user learns nothing about any other role.

CREATE ROLE :"auth_user" LOGIN PASSWORD :auth_password;
CREATE SCHEMA pgbouncer;
GRANT USAGE ON SCHEMA pgbouncer TO :"auth_user";

CREATE FUNCTION pgbouncer.session_login(login text)
RETURNS TABLE (usename name, passwd text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$
    SELECT usename, passwd FROM pg_shadow
    WHERE usename = login AND usename ~ '^gowa_r_[0-9a-f]{32}$'
$$;

REVOKE ALL ON FUNCTION pgbouncer.session_login(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer.session_login(text) TO :"auth_user";
