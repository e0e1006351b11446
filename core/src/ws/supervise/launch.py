"""The detached supervisor's launcher: run as ``python -I -S launch.py`` in a new session, never imported.

It forks once more and execs the service in the child, so the service is not a child of ``ws`` (no zombie for
``ws`` to reap, survives ``ws`` being killed) and not a session leader (cannot grab a terminal). It writes the
service's record (pid and start time) itself, before it answers: a ``ws`` killed meanwhile still leaves a record
the next ``ws`` finds. Request on stdin and answer on stdout are JSON; it imports nothing from ws.
"""

import json
import os
import sys


def start_ticks(pid):
    with open(f"/proc/{pid}/stat", "rb") as file:
        stat = file.read()
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def write_record(path, record):
    """Replaced whole (a killed ws finds it); not fsynced: after a power loss the process it names is gone."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as file:
        json.dump(record, file)
    os.replace(tmp, path)


def main():
    request = json.load(sys.stdin)
    argv, env = request["argv"], request["environment"]
    log_fd = os.open(request["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    error_read, error_write = os.pipe()  # close-on-exec: EOF without data means the exec worked
    pid = os.fork()
    if pid == 0:
        try:
            os.close(error_read)
            os.dup2(null_fd, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.chdir("/")
            for cgroup in request["cgroups"]:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
                    procs.write("0")
            os.execve(argv[0], argv, env)
        except OSError as error:
            where = error.filename or argv[0]
            os.write(error_write, f"{where}: {error.strerror or error}".encode())
        finally:
            os._exit(127)
    os.close(error_write)
    failure = b""
    while chunk := os.read(error_read, 4096):
        failure += chunk
    if failure:
        os.waitpid(pid, 0)
        json.dump({"error": failure.decode(errors="replace")}, sys.stdout)
        return 1
    record = dict(request["record"], pid=pid, pgid=os.getpgid(pid), ticks=start_ticks(pid))
    write_record(request["record_file"], record)
    json.dump({"pid": pid}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
