"""Figures of 1NN certificates (matplotlib, drawn off-screen): robust accuracy against eps for each
bound and norm, the distribution of certified radii, minimal adversarial examples, and the
distances to the nearest other-class point of an r-separation run."""
from __future__ import annotations

import numpy as np

BOUND_STYLE = {"margin": ("tab:blue", "--"), "bisector": ("tab:orange", "-."), "exact": ("tab:green", "-"),
               "attack": ("tab:red", ":")}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def robust_accuracy_curve(radius: np.ndarray, correct: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Fraction of queries correct with radius > eps, for each eps (clean accuracy at eps = 0)."""
    eps = np.asarray(eps, dtype=np.float64)
    robust = correct[None, :] & ((radius[None, :] > eps[:, None]) | (eps[:, None] == 0))
    return robust.mean(axis=1)


def plot_robust_accuracy(curves: dict, path, title: str = "") -> None:
    """curves: {norm: {label: (radius (n,), correct (n,))}}: one panel per norm, one line per label
    (a bound name, or "attack" for attack upper bounds drawn dotted)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (norm, lines) in zip(axes[0], curves.items()):
        finite = [r[np.isfinite(r) & c] for r, c in lines.values()]
        top = max([float(np.quantile(f, 0.99)) for f in finite if f.size] + [1e-3])
        eps = np.linspace(0, top, 200)
        for label, (radius, correct) in lines.items():
            color, style = BOUND_STYLE.get(label, ("k", "-"))
            name = f"{label} (upper bound)" if label == "attack" else label
            ax.plot(eps, 100 * robust_accuracy_curve(radius, correct, eps), style, color=color, label=name)
        ax.set_xlabel(f"eps ({norm})")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_radius_histogram(radius: np.ndarray, correct: np.ndarray, norm: str, path, title: str = "") -> None:
    """Histogram of the certified radii of the correctly classified queries."""
    plt = _pyplot()
    r = radius[correct & np.isfinite(radius)]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.hist(r, bins=50, color="tab:green", alpha=0.8)
    ax.set_xlabel(f"certified radius ({norm})")
    ax.set_ylabel("queries")
    ax.set_title(title or f"{len(r)} correctly classified queries", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_adversarial_examples(originals: np.ndarray, adversarial: np.ndarray, image_shape, path,
                              n: int = 8, captions=None) -> None:
    """Rows: original, adversarial, and their difference amplified to the full grey range.

    originals, adversarial: (k, D) in [0, 1] pixel units; image_shape (H, W) or (H, W, C).
    """
    plt = _pyplot()
    keep = np.flatnonzero(~np.isnan(adversarial).any(axis=1))[:n]
    fig, axes = plt.subplots(3, max(len(keep), 1), figsize=(1.6 * max(len(keep), 1), 5.2), squeeze=False)
    for col, i in enumerate(keep):
        diff = adversarial[i] - originals[i]
        amplified = 0.5 + 0.5 * diff / max(np.abs(diff).max(), 1e-12)
        for row, img in enumerate((originals[i], adversarial[i], amplified)):
            ax = axes[row, col]
            ax.imshow(np.clip(img.reshape(image_shape), 0, 1), cmap="gray" if len(image_shape) == 2 else None,
                      vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        if captions is not None:
            axes[0, col].set_title(captions[i], fontsize=7)
    for row, name in enumerate(("original", "adversarial", "difference (amplified)")):
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_separation_histograms(panels: dict, metric: str, path, eps=(), bins: int = 40, title: str = "") -> None:
    """Histograms of the distances to the nearest other-class training point, one panel per entry
    of ``panels`` ({name, e.g. "train-train": distances (n,)}), like Yang et al. 2020's Figure 2:
    percentage of points per bin, a dashed black line at the minimum (2r) and dashed red lines at
    2 * eps for each eps. Infinite distances (a class alone in the training set) are left out."""
    plt = _pyplot()
    finite = {name: d[np.isfinite(d)] for name, d in panels.items()}
    top = max([float(d.max()) for d in finite.values() if d.size] + [2 * float(e) for e in eps] + [1e-3])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (name, d) in zip(axes[0], finite.items()):
        ax.hist(d, bins=bins, range=(0, 1.02 * top), weights=np.full(d.size, 100.0 / max(d.size, 1)),
                color="tab:blue", alpha=0.8)
        if d.size:
            ax.axvline(d.min(), color="k", linestyle="--", linewidth=1, label=f"min = 2r = {d.min():.3f}")
        for e in eps:
            ax.axvline(2 * e, color="tab:red", linestyle="--", linewidth=1, label=f"2 eps = {2 * e:.3g}")
        ax.set_xlabel(f"distance to the nearest other-class training point ({metric})")
        ax.set_ylabel("percentage of points")
        ax.set_title(f"{name} ({d.size} points)", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
