"""Training curves of the demo runs: losses vs iteration, mAP vs epoch."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

from .logs import kitti_summary

__all__ = ['plot_loss_curves', 'plot_map_curves', 'map_series']


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _student_total(rec: Mapping[str, float]) -> Optional[float]:
    """Detection loss of a record: ``loss`` of a plain run, or the sum of
    the ``student.*`` losses of a distillation run."""
    student = [v for k, v in rec.items() if k.startswith('student.loss')]
    if student:
        return sum(student)
    return rec.get('loss')


def plot_loss_curves(runs: Mapping[str, Sequence[Mapping[str, float]]],
                     out_file: str, title: str = '') -> None:
    """Detection loss of every run vs iteration (left) and the
    distillation loss of the runs that have one (right).

    Args:
        runs: ``{label: training records of scalars.json}`` (each record
            has ``iter`` and loss keys).
        out_file: PNG path.
    """
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    any_distill = False
    for label, recs in runs.items():
        its = [r['iter'] for r in recs if _student_total(r) is not None]
        det = [_student_total(r) for r in recs
               if _student_total(r) is not None]
        if its:
            ax1.plot(its, det, label=label, lw=1.3)
        d_its, d_val = [], []
        for r in recs:
            terms = [v for k, v in r.items() if k.startswith('distill.loss')]
            if terms:
                d_its.append(r['iter'])
                d_val.append(sum(terms))
        if d_its:
            any_distill = True
            ax2.plot(d_its, d_val, label=f'{label}: distill loss', lw=1.3,
                     color='tab:red')
            total = [r.get('loss') for r in recs if any(
                k.startswith('distill.loss') for k in r)]
            if all(t is not None for t in total):
                ax2.plot(d_its, total, label=f'{label}: total loss', lw=1.0,
                         color='tab:gray', ls='--')
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('detection loss (cls + bbox + dir)')
    ax1.set_title('training loss')
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax2.set_xlabel('iteration')
    ax2.set_title('distillation loss')
    ax2.grid(alpha=0.3)
    if any_distill:
        ax2.legend()
    else:
        ax2.text(0.5, 0.5, 'no distillation run', ha='center',
                 transform=ax2.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


def map_series(val_records: Sequence[Mapping[str, float]],
               kind: str = '3D') -> List[tuple]:
    """``[(epoch, moderate mAP)]`` from validation records (``step`` =
    epoch) of scalars.json; records with incomplete metrics are skipped."""
    out = []
    for rec in val_records:
        m = kitti_summary(rec).get(f'mAP_{kind}')
        if m is not None:
            out.append((int(rec.get('step', len(out) + 1)), m))
    return out


def plot_map_curves(runs: Mapping[str, Sequence[Mapping[str, float]]],
                    out_file: str, title: str = '') -> Dict[str, list]:
    """Moderate AP40 mAP (3D and BEV) vs epoch for every run.

    Returns:
        dict: ``{label: [(epoch, mAP 3D, mAP BEV)]}`` plotted.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    plotted: Dict[str, list] = {}
    for label, recs in runs.items():
        s3d, sbev = map_series(recs, '3D'), map_series(recs, 'BEV')
        plotted[label] = [(e, a, b) for (e, a), (_, b) in zip(s3d, sbev)]
        for ax, series in zip(axes, (s3d, sbev)):
            if series:
                ax.plot([e for e, _ in series], [v for _, v in series],
                        marker='o', label=label)
    for ax, kind in zip(axes, ('3D', 'BEV')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(f'moderate {kind} mAP (AP40, %)')
        ax.set_title(f'{kind} detection, mean over Car / Pedestrian / '
                     'Cyclist')
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return plotted
