"""Set the claims of one profile beside those of its replication on another collection.

    python tools/replication.py --original mini --replication nfcorpus [--results results]
    python tools/replication.py --original regime --replication regime_nfcorpus --name replication_regime
    python tools/replication.py --original regime --replication regime_transductive --name transduction \
        --heading "Transduction (test positives' titles kept as pseudo-queries)"

Reads results/<original>/claims.csv and results/<replication>/claims.csv, joins them on the claim id, writes
results/<name>.csv and results/<name>.md (mta4dpr_core.report.replication.write_replication), and prints the
Markdown table and the summary counts. Exit status 1 (with the path in the message) when a claims.csv is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta4dpr_core.report.replication import MissingClaimsError, summary, write_replication  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", default="mini", help="the profile whose claims are replicated (default: mini)")
    parser.add_argument("--replication", default="nfcorpus", help="the replicating profile (default: nfcorpus)")
    parser.add_argument("--results", default=str(ROOT / "results"), help="the results root (default: results/)")
    parser.add_argument("--name", default="replication", help="the tables' file stem (default: replication)")
    parser.add_argument("--heading", default="Replication", help="the table title's first word(s)")
    args = parser.parse_args(argv)
    try:
        df = write_replication(args.results, args.original, args.replication, args.name, args.heading)
    except MissingClaimsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print((Path(args.results) / f"{args.name}.md").read_text())
    for key, value in summary(df).items():
        print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
