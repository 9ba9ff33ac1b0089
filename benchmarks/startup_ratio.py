"""Start-up as a ratio inside one run: `dl run` on a trivial file against `python -c pass`, N interleaved
runs each, medians of wall time and of the child's CPU time (less disturbed by a loaded machine).

    .venv/bin/python benchmarks/startup_ratio.py [N] [path/to/dl]
"""
import os, resource, statistics, subprocess, sys, tempfile, time
TRIVIAL = os.path.join(tempfile.mkdtemp(), "trivial.dl")
with open(TRIVIAL, "w") as f:
    f.write("def main = 1 + 2\n")
N=int(sys.argv[1]) if len(sys.argv)>1 else 15
dl=sys.argv[2] if len(sys.argv)>2 else os.path.join(os.path.dirname(sys.executable), "dl")
env={k:v for k,v in os.environ.items() if k!="PYTHONDONTWRITEBYTECODE"}
cmds={"dl":[dl,"run",TRIVIAL],"py":[os.path.join(os.path.dirname(dl),"python"),"-c","pass"]}
t={k:[] for k in cmds}; cpu={k:[] for k in cmds}
for k,c in cmds.items(): subprocess.run(c,capture_output=True,env=env)
for i in range(N):
    for k,c in cmds.items():
        r0=resource.getrusage(resource.RUSAGE_CHILDREN)
        t0=time.perf_counter(); subprocess.run(c,capture_output=True,env=env); t[k].append(time.perf_counter()-t0)
        r1=resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[k].append(r1.ru_utime-r0.ru_utime+r1.ru_stime-r0.ru_stime)
m={k:statistics.median(v) for k,v in t.items()}; c={k:statistics.median(v) for k,v in cpu.items()}
print(f"wall dl {m['dl']*1e3:.1f} ms py {m['py']*1e3:.1f} ms ratio {m['dl']/m['py']:.2f} | cpu dl {c['dl']*1e3:.1f} py {c['py']*1e3:.1f} ratio {c['dl']/c['py']:.2f} | load {os.getloadavg()[0]:.2f}")
