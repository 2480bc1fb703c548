"""Preparing a shared PostgreSQL database for a team: group roles, grants, row-level security.

Three NOLOGIN group roles; each person is a LOGIN role granted exactly one of them:

- `skelex_reader` reads the images and writes their own decisions (labels, regions,
  measurements); while a blinded project holds an image they see no one else's decisions on it.
- `skelex_adjudicator` does what a reader does, sees every read, and alone writes final labels.
- `skelex_admin` owns the tables (schema changes, imports, projects and assignments) and adds
  users; admins are not blinded but write decisions only under their own name too.

The database itself stamps the reader: a trigger fills an empty reader (adjudicator) with the
session user and refuses another name, and row-level security (forced, so it holds for the
tables' owner too; only a PostgreSQL superuser is above it) lets a person insert, change and
retract only their own rows. `init_team` can run again (after a schema upgrade, for the new
tables); every statement is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.names import InvalidName, check_name

READER = "skelex_reader"
ADJUDICATOR = "skelex_adjudicator"
ADMIN = "skelex_admin"
ROLES = {"reader": READER, "adjudicator": ADJUDICATOR, "admin": ADMIN}
PEOPLE = (READER, ADJUDICATOR)  # the roles whose members read
DECISION_TABLES = ("labels", "regions", "measurements")
FUNCTIONS = (
    "skelex_blinded(integer)",
    "skelex_superuser()",
    "skelex_stamp_reader()",
    "skelex_stamp_adjudicator()",
    "skelex_guard_image()",
)
MAX_ROLE_NAME = 63  # PostgreSQL's identifier length (bytes)


class TeamSetupError(RuntimeError):
    """Team mode cannot be set up as asked; the message says why and what to do."""


@dataclass(frozen=True)
class TeamInitResult:
    """What `init_team` set up."""

    database: str
    roles: tuple[str, ...]
    tables: tuple[str, ...]


_GROUPS = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
    CREATE ROLE {READER} NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ADJUDICATOR}') THEN
    CREATE ROLE {ADJUDICATOR} NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ADMIN}') THEN
    CREATE ROLE {ADMIN} NOLOGIN; END IF;
END $$
"""

_OWNERSHIP = f"""
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
             AND pg_get_userbyid(c.relowner) <> '{ADMIN}' LOOP
    IF r.relkind = 'v' THEN
      EXECUTE format('ALTER VIEW public.%I OWNER TO {ADMIN}', r.relname);
    ELSE  -- a table's sequences follow it
      EXECUTE format('ALTER TABLE public.%I OWNER TO {ADMIN}', r.relname);
    END IF;
  END LOOP;
END $$
"""

# a reader is blinded on an image while an active blinded project holds it; adjudicators and
# admins never are. SECURITY DEFINER: the policy reads the project tables as their owner.
_FUNCTIONS = [
    f"""
CREATE OR REPLACE FUNCTION skelex_blinded(img integer) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
  SELECT NOT (pg_has_role(session_user, '{ADJUDICATOR}', 'MEMBER')
              OR pg_has_role(session_user, '{ADMIN}', 'MEMBER'))
     AND EXISTS (SELECT 1 FROM project_images pi JOIN projects p ON p.id = pi.project_id
                 WHERE pi.image_id = img AND p.blinded AND p.status = 'active')
$$
""",
    """
CREATE OR REPLACE FUNCTION skelex_superuser() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT rolsuper FROM pg_roles WHERE rolname = session_user
$$
""",
    """
CREATE OR REPLACE FUNCTION skelex_stamp_reader() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.reader IS DISTINCT FROM session_user::text AND NOT skelex_superuser() THEN
      RAISE EXCEPTION 'this % (id %) is the decision of %: only % can change or retract it',
        rtrim(TG_TABLE_NAME, 's'), OLD.id, OLD.reader, OLD.reader
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.reader IS DISTINCT FROM OLD.reader AND NOT skelex_superuser() THEN
      RAISE EXCEPTION 'the reader of a decision cannot change'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.reader IS NULL OR NEW.reader = '' THEN
    NEW.reader := session_user;
  ELSIF NEW.reader <> session_user::text AND NOT skelex_superuser() THEN
    RAISE EXCEPTION 'decisions are stored under the database user you connected as: you are '
      '%, not %; connect as % to store their decisions', session_user, NEW.reader, NEW.reader
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$
""",
    """
CREATE OR REPLACE FUNCTION skelex_stamp_adjudicator() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF NEW.adjudicator IS NULL OR NEW.adjudicator = '' THEN
    NEW.adjudicator := session_user;
  ELSIF NEW.adjudicator <> session_user::text AND NOT skelex_superuser() THEN
    RAISE EXCEPTION 'a final label is stored under the database user you connected as: you are '
      '%, not %', session_user, NEW.adjudicator USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$
""",
]

# a reader's decisions in a project move their own assignment (core/review/reads.py), never the
# image's shared status and reader: one reader cannot confirm an image for the others, and no
# one learns from the image who read it. Adjudicators and admins may (final labels confirm).
_FUNCTIONS.append(
    f"""
CREATE OR REPLACE FUNCTION skelex_guard_image() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF (NEW.reader IS DISTINCT FROM OLD.reader
      OR (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('in_review', 'confirmed')))
     AND NOT (pg_has_role(session_user, '{ADJUDICATOR}', 'MEMBER')
              OR pg_has_role(session_user, '{ADMIN}', 'MEMBER') OR skelex_superuser())
     AND EXISTS (SELECT 1 FROM project_images pi JOIN projects p ON p.id = pi.project_id
                 WHERE pi.image_id = OLD.id AND p.status = 'active') THEN
    RAISE EXCEPTION 'image % is read in an active project: a reader''s read state is their '
      'own assignment, and the image is confirmed by its final labels', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$
"""
)

_MEMBER = "pg_has_role(session_user, '{}', 'MEMBER')"


def _policies(table: str) -> list[str]:
    """Row-level security of one decision table."""
    mine = "reader = session_user::text"
    visible = f"({mine} OR NOT skelex_blinded(image_id))"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS skelex_select ON {table}",
        f"CREATE POLICY skelex_select ON {table} FOR SELECT USING {visible}",
        f"DROP POLICY IF EXISTS skelex_insert ON {table}",
        f"CREATE POLICY skelex_insert ON {table} FOR INSERT WITH CHECK ({mine})",
        # a visible row of someone else reaches the trigger, which says whose it is
        f"DROP POLICY IF EXISTS skelex_update ON {table}",
        f"CREATE POLICY skelex_update ON {table} FOR UPDATE USING {visible} WITH CHECK ({mine})",
        f"DROP TRIGGER IF EXISTS skelex_stamp_reader ON {table}",
        f"CREATE TRIGGER skelex_stamp_reader BEFORE INSERT OR UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION skelex_stamp_reader()",
    ]


def _final_label_rules() -> list[str]:
    adjudicator = _MEMBER.format(ADJUDICATOR)
    return [
        "ALTER TABLE final_labels ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE final_labels FORCE ROW LEVEL SECURITY",
        "DROP POLICY IF EXISTS skelex_select ON final_labels",
        "CREATE POLICY skelex_select ON final_labels FOR SELECT "
        "USING (NOT skelex_blinded(image_id))",
        "DROP POLICY IF EXISTS skelex_insert ON final_labels",
        "CREATE POLICY skelex_insert ON final_labels FOR INSERT "
        f"WITH CHECK ({adjudicator} AND adjudicator = session_user::text)",
        "DROP TRIGGER IF EXISTS skelex_stamp_adjudicator ON final_labels",
        "CREATE TRIGGER skelex_stamp_adjudicator BEFORE INSERT ON final_labels "
        "FOR EACH ROW EXECUTE FUNCTION skelex_stamp_adjudicator()",
    ]


def _assignment_rules() -> list[str]:
    """A reader sees their own assignments (and others' once the image is not blinded) and
    moves only their own read state; admins create them (the grants say who writes)."""
    mine = "reader = session_user::text"
    return [
        "ALTER TABLE assignments ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE assignments FORCE ROW LEVEL SECURITY",
        "DROP POLICY IF EXISTS skelex_select ON assignments",
        "CREATE POLICY skelex_select ON assignments FOR SELECT "
        f"USING ({mine} OR NOT skelex_blinded(image_id))",
        "DROP POLICY IF EXISTS skelex_insert ON assignments",
        "CREATE POLICY skelex_insert ON assignments FOR INSERT WITH CHECK (true)",
        "DROP POLICY IF EXISTS skelex_update ON assignments",
        f"CREATE POLICY skelex_update ON assignments FOR UPDATE USING ({mine}) WITH CHECK ({mine})",
        "DROP TRIGGER IF EXISTS skelex_guard_image ON images",
        "CREATE TRIGGER skelex_guard_image BEFORE UPDATE OF status, reader ON images "
        "FOR EACH ROW EXECUTE FUNCTION skelex_guard_image()",
    ]


def _grants(database: str) -> list[str]:
    people = f"{READER}, {ADJUDICATOR}"
    everyone = f"{people}, {ADMIN}"
    return [
        f'REVOKE CONNECT, TEMPORARY ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO {everyone}',
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {everyone}",
        f"GRANT CREATE ON SCHEMA public TO {ADMIN}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {people}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {people}",
        f"GRANT INSERT, UPDATE ON {', '.join(DECISION_TABLES)} TO {people}",
        f"GRANT INSERT ON audit_events TO {people}",
        # a decision moves its image to in_review / confirmed; analysis stores AI output
        f"GRANT UPDATE (status, reader, ai_score) ON images TO {people}",
        f"GRANT INSERT, UPDATE ON predictions TO {people}",
        # which models (and head versions) the team uses is an admin's choice: an admin's
        # `analyze` registers them; a reader's window then only adds predictions
        f"REVOKE INSERT, UPDATE, DELETE ON model_versions FROM {people}",
        f"GRANT UPDATE (status, read_at) ON assignments TO {people}",
        f"GRANT INSERT ON final_labels TO {ADJUDICATOR}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON final_labels FROM {READER}",
        f"GRANT EXECUTE ON FUNCTION skelex_blinded(integer) TO {everyone}",
        f"GRANT EXECUTE ON FUNCTION skelex_superuser() TO {everyone}",
    ]


def _require_postgres(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        raise TeamSetupError(
            f"team mode needs a shared PostgreSQL database, not {db.name}: give "
            "--db postgresql://USER@HOST/DATABASE (see docs/TEAM.md); SQLite stays single-user"
        )


def _run(conn: Connection, statements: list[str]) -> None:
    for statement in statements:
        conn.execute(text(statement))


def init_team(db: Database) -> TeamInitResult:
    """Set up roles, ownership, grants, row-level security and triggers on `db` (already at
    this version's schema). Run by a superuser or a role with CREATEROLE that owns the
    database; one transaction."""
    _require_postgres(db)
    try:
        with db.engine.begin() as conn:
            database = str(conn.execute(text("SELECT current_database()")).scalar_one())
            conn.execute(text(_GROUPS))
            me = str(conn.execute(text("SELECT session_user")).scalar_one())
            superuser = bool(
                conn.execute(
                    text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
                ).scalar_one()
            )
            if not superuser:  # to hand the tables to skelex_admin it must be one of them
                conn.execute(text(f'GRANT {ADMIN} TO "{me}"'))
            conn.execute(text(_OWNERSHIP))
            _run(conn, _FUNCTIONS)
            for function in FUNCTIONS:
                conn.execute(text(f"ALTER FUNCTION {function} OWNER TO {ADMIN}"))
            for table in DECISION_TABLES:
                _run(conn, _policies(table))
            _run(conn, _final_label_rules())
            _run(conn, _assignment_rules())
            _run(conn, _grants(database))
            tables = tuple(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                        "AND c.relrowsecurity ORDER BY c.relname"
                    )
                ).scalars()
            )
    except DBAPIError as exc:
        raise TeamSetupError(
            f"team init failed on {db.name}: {_server_message(exc)}; run it as a PostgreSQL "
            "superuser or as the database's owner with CREATEROLE (see docs/TEAM.md)"
        ) from exc
    return TeamInitResult(database=database, roles=(READER, ADJUDICATOR, ADMIN), tables=tables)


def _server_message(exc: DBAPIError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def check_role_name(name: str) -> str:
    """A person's PostgreSQL role name: a reader name PostgreSQL can hold, not a group."""
    try:
        name = check_name(name, "user name")
    except InvalidName as exc:
        raise TeamSetupError(str(exc)) from exc
    if len(name.encode()) > MAX_ROLE_NAME:
        raise TeamSetupError(
            f"user name {name!r} is longer than PostgreSQL's {MAX_ROLE_NAME} bytes; choose a "
            "shorter one"
        )
    lowered = name.lower()
    if lowered.startswith("pg_") or lowered.startswith("skelex_") or lowered == "public":
        raise TeamSetupError(
            f"user name {name!r} is reserved (pg_*, skelex_* and public are not people); "
            "choose another"
        )
    return name


def add_user(db: Database, name: str, role: str, password: str | None = None) -> bool:
    """Create the LOGIN role `name` (or keep the existing one) and make it a member of exactly
    the group `role` ('reader', 'adjudicator' or 'admin'); returns whether it was created.
    Admins get CREATEROLE, to add users in turn. Run by an admin."""
    _require_postgres(db)
    if role not in ROLES:
        raise TeamSetupError(f"unknown team role {role!r}; use one of {', '.join(ROLES)}")
    name = check_role_name(name)
    group = ROLES[role]
    try:
        with db.engine.begin() as conn:
            if not conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :g"), {"g": ADMIN}
            ).first():
                raise TeamSetupError(
                    f"{db.name} is not set up for a team yet: run `skelex-desktop team init` "
                    "first (as a PostgreSQL superuser)"
                )
            existed = conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}
            ).first()
            if existed is None:
                _server_built(
                    conn, "SELECT format('CREATE ROLE %I LOGIN', CAST(:n AS text))", name=name
                )
            if password is not None:
                _server_built(
                    conn,
                    "SELECT format('ALTER ROLE %I PASSWORD %L', CAST(:n AS text), CAST(:p AS text))",
                    name=name,
                    p=password,
                )
            for other in ROLES.values():
                if other != group and _member(conn, name, other):
                    _server_built(
                        conn,
                        f"SELECT format('REVOKE {other} FROM %I', CAST(:n AS text))",
                        name=name,
                    )
            _server_built(
                conn, f"SELECT format('GRANT {group} TO %I', CAST(:n AS text))", name=name
            )
            attribute = "CREATEROLE" if group == ADMIN else "NOCREATEROLE"
            _server_built(
                conn, f"SELECT format('ALTER ROLE %I {attribute}', CAST(:n AS text))", name=name
            )
    except DBAPIError as exc:
        raise TeamSetupError(
            f"cannot add user {name!r}: {_server_message(exc)}; users are added by an admin "
            f"(a member of {ADMIN} with CREATEROLE, or a superuser)"
        ) from exc
    return existed is None


def _member(conn: Connection, name: str, group: str) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = :g AND u.rolname = :n"
            ),
            {"g": group, "n": name},
        ).first()
    )


def _server_built(conn: Connection, builder: str, **params: str) -> None:
    """Run a statement the server itself quoted (`format` with %I / %L): names and passwords
    never pass through Python string formatting."""
    statement = str(conn.execute(text(builder), {"n": params.pop("name"), **params}).scalar_one())
    conn.execute(text(statement))


def team_role(db: Database, name: str) -> str | None:
    """'reader', 'adjudicator' or 'admin' for a person's role (the group they belong to)."""
    with db.engine.connect() as conn:
        for role, group in ROLES.items():
            if _member(conn, name, group):
                return role
    return None
