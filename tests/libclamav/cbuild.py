"""cbuild.py -- compiles one of this folder's C harnesses against a libclamav: a prefix of
scripts/build-libclamav, or Debian's (pkg-config) when prefix is empty."""
import pathlib
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
STRICT = ["-Wall", "-Wextra", "-Werror"]


def harness(out, source, prefix, sanitize=False, warn=STRICT):
    """Builds HERE/source into out, linked with the libclamav of prefix (rpath), and returns out."""
    opt = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"] if sanitize else ["-O2"]
    cmd = ["cc", *opt, *warn, "-o", str(out), str(HERE / source)]
    if prefix:
        cmd += [f"-I{prefix}/include", f"-L{prefix}/lib", f"-Wl,-rpath,{prefix}/lib", "-lclamav"]
    else:
        cmd += subprocess.check_output(["pkg-config", "--cflags", "--libs", "libclamav"], text=True).split()
    subprocess.run(cmd, check=True)
    return out
