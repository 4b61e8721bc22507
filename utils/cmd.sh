# The job launcher of every stage; one copy, symlinked as egs/<recipe>/cmd.sh.
# Switching to the cluster is one line (or CMD_BACKEND=slurm in the environment): local | slurm
cmd_backend=${CMD_BACKEND:-local}

# Site settings: the recipe's conf/slurm.conf, else the shipped utils/conf/slurm.conf.
slurm_conf=conf/slurm.conf
[ -f "${slurm_conf}" ] || slurm_conf=utils/conf/slurm.conf
case "${cmd_backend}" in
    local)  # utils/run.py: local processes; queue options are accepted and ignored
        export train_cmd="utils/run.py"
        export cuda_cmd="utils/run.py --gpu 1"
        export decode_cmd="utils/run.py" ;;
    slurm)  # utils/slurm.py: one sbatch job array per call, options mapped by the slurm.conf
        export train_cmd="utils/slurm.py --config ${slurm_conf}"
        export cuda_cmd="utils/slurm.py --config ${slurm_conf} --gpu 1"
        export decode_cmd="utils/slurm.py --config ${slurm_conf}" ;;
    *)
        echo "cmd.sh: error: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        return 1 ;;
esac
