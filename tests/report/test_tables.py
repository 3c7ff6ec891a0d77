def test_counts_print_as_integers_and_metrics_keep_two_decimals(tmp_path):
    """Issue 33: Tables 6 and 9 printed `seeds` 5.00 and `dim` 64.00 (a paper row's blank made them floats)."""
    import numpy as np
    import pandas as pd

    from mta4dpr_core.report.tables import write_table

    frame = pd.DataFrame({"id": ["ours", "paper"], "seeds": [5.0, np.nan], "dim": [64.0, 768.0], "R@1k": [100.0, 97.5]})
    write_table(frame, tmp_path, "t")
    assert "| ours | 5 | 64 | 100.00 |" in (tmp_path / "t.md").read_text()
    assert "paper,,768,97.50" in (tmp_path / "t.csv").read_text()
