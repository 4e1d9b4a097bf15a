"""Run a rotorlab campaign on a SLURM cluster with dask-jobqueue.

Every SLURM job starts ``processes`` Dask workers of one thread each; the job script caps
OpenMP/BLAS, numba and TensorFlow (DeePMD) at ``threads`` threads per run, so runs sharing a
node do not oversubscribe its cores. The campaign directory must be on a filesystem every
node sees (the runs resume from their stores there when a job ends or a node fails).

    python examples/slurm_campaign.py datasets/campaigns/study_Li3PS4.yaml -o /scratch/$USER/li3ps4 \
        --jobs 8 --cores 32 --memory 64GB --walltime 24:00:00 --queue compute

Submitting again after the jobs' walltime ran out continues every unfinished run from its last
checkpoint and recomputes nothing that finished.
"""

from __future__ import annotations

import argparse


def slurm_cluster(cores: int = 32, memory: str = "64GB", walltime: str = "24:00:00",
                  queue: str | None = None, account: str | None = None, threads: int = 1,
                  python: str | None = None, scheduler_host: str | None = None,
                  prologue: list | None = None, **kwargs):
    """A ``dask_jobqueue.SLURMCluster`` for rotorlab runs.

    Parameters
    ----------
    cores : int
        Cores per SLURM job; the job runs ``cores // threads`` single-threaded workers.
    memory : str
        Memory per job (e.g. ``"64GB"``).
    walltime : str
        ``HH:MM:SS`` per job.
    queue, account : str, optional
        SLURM partition and account.
    threads : int
        Threads of one run (1 for the reference force field; DeePMD on CPU may use more).
    python : str, optional
        Interpreter on the compute nodes (default: this one).
    scheduler_host : str, optional
        Interface/address the scheduler binds to (default: dask-jobqueue's choice, the
        login node's outward address; ``"127.0.0.1"`` for a local test).
    prologue : list of str, optional
        Extra job-script lines before the worker starts (``module load ...``, venv).

    Returns
    -------
    dask_jobqueue.SLURMCluster
    """
    from dask_jobqueue import SLURMCluster

    from rotorlab.campaign.runner import thread_env

    env = [f"export {k}={v}" for k, v in thread_env(threads).items()]
    opts = dict(kwargs)
    if scheduler_host is not None:
        opts.setdefault("scheduler_options", {})["host"] = scheduler_host
    return SLURMCluster(cores=cores, processes=max(1, cores // threads), memory=memory,
                        walltime=walltime, queue=queue, account=account, python=python,
                        job_script_prologue=[*(prologue or []), *env],
                        worker_extra_args=["--nthreads", "1"] if threads == 1 else [],
                        **opts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("spec")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--jobs", type=int, default=4, help="SLURM jobs to keep running")
    p.add_argument("--cores", type=int, default=32)
    p.add_argument("--memory", default="64GB")
    p.add_argument("--walltime", default="24:00:00")
    p.add_argument("--queue", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)

    from distributed import Client

    from rotorlab.campaign import CampaignSpec, run_campaign
    from rotorlab.campaign.figures import report

    cluster = slurm_cluster(a.cores, a.memory, a.walltime, a.queue, a.account, a.threads)
    print(cluster.job_script())
    cluster.scale(jobs=a.jobs)
    with Client(cluster) as client:
        state = run_campaign(CampaignSpec.load(a.spec), a.output, client=client)
        report(a.output, collect=False)
    cluster.close()
    return 1 if state.failed() else 0


if __name__ == "__main__":
    raise SystemExit(main())
