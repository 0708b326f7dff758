"""``sessioncheck replay`` of a report whose program names an operation of
the user's own: the operation is registered by the ``--store`` module when
it is imported, or by a module named with ``--operations``; a report is
read only after them, and an operation nobody registered is a usage error
that says which option loads it (the report never names code to import)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPS = '''
from sessioncheck.operations import OperationDef, find, register

# a register operation of the user's own: set the session's headline
find("retitle") or register(OperationDef(
    name="retitle", effect="registers", input="fields", method="retitle", keys=("headline",),
    call=lambda store, session, fields: store.retitle(session, fields["headline"])))
'''

STORE = '''
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    def retitle(self, session_id, headline):
        """BUG: the whole metadata becomes the headline (other fields are lost)."""
        with self._lock(session_id):
            data = self._load(session_id)
            data["metadata"] = {} if headline is None else {"headline": headline}
            self._save(session_id, data)
'''

PROGRAM = [["start", 0, ["persist", 0, [["model", "fresh"]]]], ["start", 0, ["retitle", 0, [["headline", "fresh"]]]]]


def sc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def _save_report(tmp_path: Path) -> Path:
    """Run the program in this process (the store module registers the
    operation) and save its report as ``sessioncheck run`` does."""
    (tmp_path / "titles_ops.py").write_text(OPS)
    (tmp_path / "titles_store.py").write_text(OPS + STORE)  # registers retitle when imported
    (tmp_path / "titles_plain.py").write_text(STORE)  # the same store, registering nothing
    sys.path.insert(0, str(tmp_path))
    try:
        from sessioncheck.controlled.program import program_from_json
        from sessioncheck.reporting import report as reports
        from sessioncheck.specs import resolve
        from sessioncheck.verify import model_config, rerun

        spec = resolve("titles_store:Store")
        cfg = model_config(spec, "threads", ())
        path = tmp_path / "report.json"
        outcome, story = rerun("titles_store:Store", "threads", cfg, program_from_json(PROGRAM), path)
        assert outcome.failed and outcome.violations[0].invariant == "I3"
        reports.save(reports.build(store="titles_store:Store", store_module=spec.module, mode="threads", cfg=cfg,
                                   seed=None, program=outcome.program, violations=outcome.violations,
                                   story=story, trace=outcome.trace, stats={}), path)
        return path
    finally:
        sys.path.remove(str(tmp_path))


def test_replay_of_a_users_operation(tmp_path):
    path = _save_report(tmp_path)
    assert '"retitle"' in path.read_text()
    # the --store module registers the operation when imported
    p = sc("replay", str(path), "--store", "titles_store:Store", cwd=tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith("replayed: the same story") and "I3" in p.stdout
    # a store module that registers nothing: a usage error naming the way
    p = sc("replay", str(path), "--store", "titles_plain:Store", cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "operation 'retitle' is not registered" in p.stderr and "--operations MODULE" in p.stderr
    assert "Traceback" not in p.stderr
    # ... and --operations loads the module that does
    p = sc("replay", str(path), "--store", "titles_plain:Store", "--operations", "titles_ops", cwd=tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "replayed" in p.stdout and "I3" in p.stdout
    p = sc("replay", str(path), "--store", "titles_plain:Store", "--operations", "no_such_module", cwd=tmp_path)
    assert p.returncode == 2 and "--operations no_such_module" in p.stderr, p.stderr
