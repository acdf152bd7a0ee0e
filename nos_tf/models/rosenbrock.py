"""The 2-D Rosenbrock function, minimised by real Keras optimizers from a fixed start.

f(x, y) = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1), at the end of a long, curved,
nearly flat valley: the paper's figure shows PowerSign and AddSign reaching the minimum
faster than SGD, momentum and Adam. Every optimizer here is the same object a model would
use (`optimizer.apply_gradients` on a two-element `keras.Variable`), rule optimizers
included. The default start is the customary (−1.2, 1) (Rosenbrock, 1960).
"""

import dataclasses
import functools

import keras
import numpy as np
import tensorflow as tf

START = (-1.2, 1.0)
MINIMUM = (1.0, 1.0)


def rosenbrock(point):
    """f at `point` = [x, y] (a tensor or array)."""
    x, y = point[0], point[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


@dataclasses.dataclass
class Descent:
    """One optimizer's run from the start."""

    trajectory: np.ndarray  # [steps + 1, 2]: the start, then the point after each step.
    steps_to_tolerance: int | None  # Steps until it stays within `tolerance`; None: never.
    tolerance: float

    @property
    def distances(self) -> np.ndarray:
        """Euclidean distance to the minimum (1, 1) at each point of the trajectory."""
        return np.linalg.norm(self.trajectory - np.asarray(MINIMUM), axis=1)

    @property
    def final_distance(self) -> float:
        return float(self.distances[-1])

    @property
    def final_value(self) -> float:
        return float(rosenbrock(self.trajectory[-1]))


def descend(
    optimizer: keras.optimizers.Optimizer,
    start: tuple[float, float] = START,
    steps: int = 5000,
    tolerance: float = 1e-3,
) -> Descent:
    """Runs `steps` updates of `optimizer` on f from `start`, all in one compiled loop.

    The steps an optimizer needs to come within `tolerance` of the minimum count up to the
    point from which its Euclidean distance to (1, 1) stays at most `tolerance` until the
    end of the run: passing through the tolerance ball on the way elsewhere does not count.
    A run that diverges leaves non-finite points in its trajectory.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    point = keras.Variable(np.asarray(start, dtype=np.float32), name="point")
    optimizer.build([point])
    # One compiled loop per optimizer. As a partial rather than a closure: TensorFlow
    # counts traces per function *code*, and a closure's fifth trace (the fifth optimizer
    # of a transfer run) logged a warning to move the tf.function out of the loop.
    run = tf.function(functools.partial(_updates, optimizer, point, steps))
    trajectory = run().numpy().astype(np.float64)
    distances = np.linalg.norm(trajectory - np.asarray(MINIMUM), axis=1)
    outside = np.flatnonzero(~(distances <= tolerance))  # NaN counts as outside.
    if not outside.size:
        return Descent(trajectory, 0, tolerance)
    reached = int(outside[-1]) + 1
    return Descent(trajectory, reached if reached <= steps else None, tolerance)


def _updates(optimizer, point, steps):
    """`steps` updates of `point` by `optimizer` on f; the points, the start's first."""
    trajectory = tf.TensorArray(tf.float32, size=steps + 1)
    trajectory = trajectory.write(0, point.value)
    for step in tf.range(steps):
        with tf.GradientTape() as tape:
            value = rosenbrock(point.value)
        optimizer.apply_gradients([(tape.gradient(value, point.value), point)])
        trajectory = trajectory.write(step + 1, point.value)
    return trajectory.stack()


def plot_trajectories(
    descents: dict[str, Descent], path: str, start: tuple[float, float] = START
) -> None:
    """Writes `trajectories_figure` to `path` (PNG)."""
    trajectories_figure(descents, start).savefig(path, dpi=120)


def trajectories_figure(descents: dict[str, Descent], start: tuple[float, float] = START):
    """Each descent's path over contours of log f, with the start and the minimum marked:
    a matplotlib Figure of its own, outside pyplot, so that drawing it neither switches the
    caller's backend nor closes their figures (as `matplotlib.use` does).

    Each path's last finite point is ringed in its colour: runs from one start mostly
    follow the same valley, so a later path can hide an earlier one entirely (Adam's hid
    SGD's), and the ring still shows where each run ended.
    """
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    finite = [d.trajectory[np.isfinite(d.trajectory).all(axis=1)] for d in descents.values()]
    # The window frames the points no worse than 10 times the start (and 100): a run that
    # diverges passes through points like (-7e30, 4e20) before it turns to inf, and they
    # set the window to that size, the valley a line in it.
    points = np.concatenate([np.asarray([start, MINIMUM]), *finite])
    bound = 10.0 * max(float(rosenbrock(np.asarray(start, np.float64))), 100.0)
    with np.errstate(over="ignore", invalid="ignore"):
        points = points[rosenbrock(points.T.astype(np.float64)) <= bound]
    low, high = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    margin = 0.25 * np.maximum(high - low, 1.0)
    low, high = np.minimum(low, [-2.0, -1.0]) - margin, np.maximum(high, [2.0, 3.0]) + margin
    xs, ys = np.meshgrid(np.linspace(low[0], high[0], 400), np.linspace(low[1], high[1], 400))
    figure = Figure(figsize=(8, 6))
    axes = figure.subplots()
    axes.contour(xs, ys, np.log10(rosenbrock(np.stack([xs, ys])) + 1e-3), levels=30,
                 cmap="Greys", linewidths=0.6)
    for (label, descent), points in zip(descents.items(), finite):
        (line,) = axes.plot(*descent.trajectory.T, linewidth=1.2, label=label)
        if len(points):
            axes.plot(*points[-1], "o", color=line.get_color(), markerfacecolor="none",
                      markersize=8)
    axes.plot(*start, "ko", label="start")
    axes.plot(*MINIMUM, "r*", markersize=12, label="minimum")
    axes.set_xlim(low[0], high[0])
    axes.set_ylim(low[1], high[1])
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title("Rosenbrock: optimizer trajectories over contours of log10 f")
    axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    return figure
