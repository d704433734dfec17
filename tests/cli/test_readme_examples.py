"""``scripts/readme_examples.py`` runs a README's console examples in order and names the shown
lines that no printed line matches (numbers masked), so the README cannot drift unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "readme_examples.py"
README = """# demo

```console
$ mkdir -p out && echo "top-1 91.1% in 48 s" > out/log && cat out/log
top-1 12.5% in 3 s
$ echo "one line"; echo "another line"
...
one line
$ curl http://127.0.0.1:8000/api/model
{"model": "x"}
```

```bash
$ echo never run
```

```console
$ echo "what it prints now"
what it printed once
```
"""


def test_matching_skipping_and_drift(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--readme", str(readme), "--workdir",
                           str(tmp_path / "work")], capture_output=True, text=True, timeout=60)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "ok    README.md:4  $ mkdir -p out" in out and "(exit 0" in out  # numbers masked
    assert (tmp_path / "work" / "out" / "log").is_file()  # run in the working folder
    assert "ok    README.md:6" in out  # "..." stands for any lines
    assert "skip  README.md:9  $ curl" in out and "a running mict serve" in out
    assert "never run" not in out  # only console blocks
    assert "DRIFT README.md:18" in out
    assert "README: what it printed once\n        printed ~ what it prints now" in out
    assert out.rstrip().endswith("1 line(s) drifted")
