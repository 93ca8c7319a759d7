import numpy as np

from shared.plots import heatmap, line_plot, mean_std_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_mean_std_curves_truncates_and_uses_sample_std():
    mean, std = mean_std_curves([[1, 2, 3], [3, 4]])
    np.testing.assert_allclose(mean, [2, 3])
    np.testing.assert_allclose(std, [np.sqrt(2), np.sqrt(2)])


def test_line_plot_and_heatmap_write_pngs(tmp_path):
    mean, std = mean_std_curves([[1, 2, 3], [2, 3, 4]])
    line = line_plot({"a": ([0, 1, 2], mean, std), "b": ([0, 1, 2], mean + 1, None)}, tmp_path / "l.png",
                     xlabel="step", ylabel="loss", logy=True)
    heat = heatmap([[0, 1], [1, 0]], tmp_path / "h.png", xlabel="step", ylabel="layer", xticks=["0", "1"])
    assert line.read_bytes()[:8] == PNG_MAGIC and heat.read_bytes()[:8] == PNG_MAGIC
