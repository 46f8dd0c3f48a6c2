"""One process of a multi-process search, run by tests/test_multiprocess.py:

    python tests/multiprocess_child.py [--at-chunk N --do kill|fail|interrupt|terminate --in-process I|all]
                                       [--late SECONDS] [--fail-before-search] (in the --in-process one)
                                       [--join HOST:PORT N I] [--on-round-fails | --on-round-in-process-0] -- VMAPTUNE_RUN_ARGS...

Runs `vmaptune run ...` (the command a user runs on each host). --join starts JAX's distributed
runtime here with short timeouts (so a test of a failing process ends in seconds, not JAX's
default minutes) instead of through the command's --coordinator flags. --at-chunk makes the
chosen process(es) SIGKILL themselves or raise after their N-th chunk. Checkpoint saves wait for
their commit, so a kill leaves every checkpoint taken before it on disk.
"""

import argparse
import os
import signal
import sys
import time

import jax

from vmaptune import checkpoint, cli, distributed, population


def main() -> int:
    # Ctrl-C reaches this process as it reaches a user's: a suite started as a background job of a
    # non-interactive shell (CI's) hands its children SIGINT ignored (POSIX), and vt.tune leaves an
    # ignored signal ignored, as the shell meant
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = sys.argv[1:]
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--at-chunk", type=int, default=None)
    parser.add_argument("--do", choices=("kill", "fail", "interrupt", "terminate"), default="kill")
    parser.add_argument("--in-process", default="all")
    parser.add_argument("--join", nargs=3, default=None)
    parser.add_argument("--on-round-fails", action="store_true")
    parser.add_argument("--on-round-in-process-0", action="store_true")
    parser.add_argument("--late", type=float, default=0.0)  # seconds the chosen process(es) reach the run later
    parser.add_argument("--fail-before-search", action="store_true")  # the chosen process(es) raise before it
    args = parser.parse_args(argv[:split])
    if args.join:
        address, count, index = args.join
        distributed.initialize(address, int(count), int(index), heartbeat_timeout_seconds=10,
                               shutdown_timeout_seconds=10)
    # (with --join only: jax.process_index() before the command's own join would start JAX too soon)
    chosen = bool(args.join) and args.in_process in ("all", str(jax.process_index()))
    if args.late:  # the chosen process(es) reach the search late, joined (a host slower to load its data)
        import vmaptune as vt

        search = vt.tune

        def late_search(*a, **k):
            if args.in_process in ("all", str(jax.process_index())):
                time.sleep(args.late)
            return search(*a, **k)
        vt.tune = late_search
    if args.fail_before_search and chosen:  # (its data failed to load)
        raise RuntimeError(f"test failure in process {jax.process_index()} before the search")
    save = checkpoint.Checkpoints.save

    def save_and_wait(self, *a, **k):
        step = save(self, *a, **k)
        if self._manager is not None:
            self._manager.wait_until_finished()
        return step
    checkpoint.Checkpoints.save = save_and_wait
    if args.at_chunk is not None:
        record, seen = population.PopulationRun._record, {"n": 0}

        def recorded(self, *a, **k):
            record(self, *a, **k)
            seen["n"] += 1
            me = jax.process_index()
            if seen["n"] == args.at_chunk and args.in_process in ("all", str(me)):
                if args.do == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if args.do in ("interrupt", "terminate"):  # Ctrl-C or a scheduler's SIGTERM, to this process
                    os.kill(os.getpid(), signal.SIGINT if args.do == "interrupt" else signal.SIGTERM)
                    return
                raise RuntimeError(f"test failure in process {me} after chunk {seen['n']}")
        population.PopulationRun._record = recorded
    if args.on_round_fails:  # the run's callback (vt.tune's on_round, run in process 0) raises
        import vmaptune as vt

        tune = vt.tune

        def failing_on_round(results):
            raise RuntimeError(f"test on_round failure after round {int(results.members['round'].max())}")
        vt.tune = lambda *a, **k: tune(*a, **{**k, "on_round": failing_on_round})
    if args.on_round_in_process_0:  # a callback given to process 0 alone (it runs only there anyway)
        import vmaptune as vt

        tune = vt.tune

        def given_to_process_0(*a, **k):  # (after the command's own on_round, an Optuna export, where it has one)
            own = k.get("on_round")

            def print_round(results):
                if own is not None:
                    own(results)
                print(f"on_round after round {int(results.members['round'].max())}", flush=True)
            return tune(*a, **{**k, "on_round": print_round if jax.process_index() == 0 else None})
        vt.tune = given_to_process_0
    return cli.main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
