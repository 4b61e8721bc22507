# The job launcher of every stage. Switching to the cluster is this one line: local | slurm
cmd_backend=local

case "${cmd_backend}" in
    local)  # utils/run.py: local processes; queue options are accepted and ignored
        export train_cmd="utils/run.py"
        export cuda_cmd="utils/run.py --gpu 1"
        export decode_cmd="utils/run.py" ;;
    slurm)  # utils/slurm.py: one sbatch job array per call, options mapped by conf/slurm.conf
        export train_cmd="utils/slurm.py --config conf/slurm.conf"
        export cuda_cmd="utils/slurm.py --config conf/slurm.conf --gpu 1"
        export decode_cmd="utils/slurm.py --config conf/slurm.conf" ;;
    *)
        echo "cmd.sh: error: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        return 1 ;;
esac
