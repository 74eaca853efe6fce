"""`cpack -G DEB` in the build tree builds cairn-server, cairn-dev and python3-cairn; their control
fields, maintainer scripts and contents are what docs/operations.md ("Packages") promises, and
the packaged binary and Python module run (extracted, not installed)."""

import glob
import os
import shutil
import subprocess
import tempfile

import pytest

BUILD = os.environ["CAIRN_BUILD_DIR"]


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, **kw).stdout


@pytest.fixture(scope="module")
def debs():
    out = tempfile.mkdtemp(prefix="cairn-cpack-")
    try:
        run("cpack", "-G", "DEB", "-B", out, "--config", os.path.join(BUILD, "CPackConfig.cmake"),
            cwd=BUILD)
        found = {}
        for path in glob.glob(os.path.join(out, "*.deb")):
            found[run("dpkg-deb", "-f", path, "Package").strip()] = path
        yield found, out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def field(path, name):
    return run("dpkg-deb", "-f", path, name).strip()


def contents(path):
    # "drwxr-xr-x root/root 0 2026-01-01 00:00 ./usr/bin/cairn" -> "/usr/bin/cairn"
    return [line.split()[5].lstrip(".") for line in run("dpkg-deb", "-c", path).splitlines()]


def test_three_packages_with_control_fields(debs):
    found, _ = debs
    assert sorted(found) == ["cairn-dev", "cairn-server", "python3-cairn"]
    for name, path in found.items():
        assert field(path, "Version") == run(os.path.join(BUILD, "server/main/cairn"),
                                             "--version").split()[2]
        assert field(path, "Architecture") == run("dpkg", "--print-architecture").strip()
        assert field(path, "Maintainer")
        assert field(path, "Description")
    server = found["cairn-server"]
    depends = field(server, "Depends")
    assert "adduser" in depends and "libgrpc++" in depends and "libc6" in depends, depends
    assert "libgrpc++-dev" in field(found["cairn-dev"], "Depends")
    py_depends = field(found["python3-cairn"], "Depends")
    assert "python3 (>= 3." in py_depends and "python3 (<< 3." in py_depends, py_depends


def test_server_package_has_binary_unit_default_file_and_scripts(debs):
    found, out = debs
    path = found["cairn-server"]
    files = contents(path)
    for f in ("/usr/bin/cairn", "/lib/systemd/system/cairn.service", "/etc/default/cairn",
              "/usr/share/doc/cairn-server/operations.md"):
        assert f in files, (f, files)
    control = os.path.join(out, "server-control")
    run("dpkg-deb", "-e", path, control)
    with open(os.path.join(control, "conffiles")) as f:
        assert f.read().split() == ["/etc/default/cairn"]
    with open(os.path.join(control, "postinst")) as f:
        postinst = f.read()
    assert "adduser --system" in postinst and "/var/lib/cairn" in postinst
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(os.path.join(control, script), os.X_OK), script
        run("sh", "-n", os.path.join(control, script))  # parses

    root = os.path.join(out, "server-root")
    run("dpkg-deb", "-x", path, root)
    with open(os.path.join(root, "lib/systemd/system/cairn.service")) as f:
        unit = f.read()
    assert "EnvironmentFile=-/etc/default/cairn" in unit
    assert "User=cairn" in unit
    assert "ExecStart=/usr/bin/cairn --name=${CAIRN_NAME} --data-dir=${CAIRN_DATA_DIR} $DAEMON_ARGS" in unit
    assert "CAIRN_DATA_DIR=/var/lib/cairn/default" in unit
    version = run(os.path.join(root, "usr/bin/cairn"), "--version")
    assert version.startswith("cairn Version: "), version


def test_dev_package_has_headers_libraries_and_cmake_package(debs):
    found, _ = debs
    files = contents(found["cairn-dev"])
    # CMAKE_INSTALL_LIBDIR: lib, or lib/<multiarch> when configured with the /usr prefix.
    libdir = os.path.dirname(next(f for f in files if f.endswith("/libcairn_client.a")))
    assert libdir.startswith("/usr/lib"), libdir
    for f in ("/usr/include/cairn/client.h", "/usr/include/cairn/testing/cluster.h",
              libdir + "/cmake/cairn/cairnConfig.cmake",
              libdir + "/cmake/cairn/cairnConfigVersion.cmake",
              libdir + "/cmake/cairn/cairnTargets.cmake", libdir + "/libcairn_recipes.a",
              libdir + "/libcairn_testing.a", "/usr/bin/cairnctl"):
        assert f in files, (f, [x for x in files if "cairn" in x])
    assert any(f.startswith("/usr/include/cairn/recipes/") for f in files)
    assert not any(f.startswith("/etc/") or f == "/usr/bin/cairn" for f in files)


def test_python_package_imports_under_usr_bin_python3(debs):
    found, out = debs
    files = contents(found["python3-cairn"])
    assert "/usr/lib/python3/dist-packages/cairn/__init__.py" in files, files
    assert any(f.startswith("/usr/lib/python3/dist-packages/cairn/_cairn") and f.endswith(".so")
               for f in files), files
    root = os.path.join(out, "python-root")
    run("dpkg-deb", "-x", found["python3-cairn"], root)
    env = dict(os.environ, PYTHONPATH=os.path.join(root, "usr/lib/python3/dist-packages"))
    where = run("/usr/bin/python3", "-c", "import cairn; print(cairn.__file__)", env=env).strip()
    assert where.startswith(root), where
