"""The entrypoint of an ftr Ray job (runs on the Ray head with the cluster's python; needs only ``ray``).

    python ray_driver.py --nodes N --gpus G [--cpus C] --port P --pythonpath DIR -- NODE_COMMAND...

Reserves N bundles ({"CPU": C, "GPU": G} each, spread over the cluster's nodes where it can), finds the address
of the first bundle's node, and runs NODE_COMMAND --rank I --master-addr HEAD --master-port P in each bundle:
Ray places the workers, each backend's own torchrun/accelerate launch does the rendezvous.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # ftr's launchers/ray.py is not ray
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--gpus", type=int, required=True)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pythonpath", default="")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    ray.init(address="auto")
    bundle = {"CPU": args.cpus, **({"GPU": args.gpus} if args.gpus else {})}
    group = placement_group([bundle] * args.nodes, strategy="SPREAD")
    ray.get(group.ready())

    def place(index: int) -> dict:
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index),
                "num_cpus": args.cpus, "num_gpus": args.gpus}

    @ray.remote
    def address() -> str:
        return ray.util.get_node_ip_address()

    @ray.remote
    def node(rank: int, head: str) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # Ray's own, not the trainer's
        if args.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (args.pythonpath, env.get("PYTHONPATH")) if p)
        if not args.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ""
        argv = [*command, "--rank", str(rank), "--master-addr", head, "--master-port", str(args.port)]
        return subprocess.run(argv, env=env).returncode

    head = ray.get(address.options(**place(0)).remote())
    print(f"ftr: {args.nodes} Ray worker(s), head {head}:{args.port}", file=sys.stderr, flush=True)
    codes = ray.get([node.options(**place(i)).remote(i, head) for i in range(args.nodes)])
    print(f"ftr: worker exit statuses {codes}", file=sys.stderr, flush=True)
    return max(codes, key=abs)


if __name__ == "__main__":
    sys.exit(main())
