"""pytest --no-skips: fail the run when any test was skipped. CI passes it, since there every test dependency
(PyTorch, the oracle) is installed and a skip can only mean a test silently stopped running."""


def pytest_addoption(parser):
    parser.addoption("--no-skips", action="store_true",
                     help="fail the run if any test is skipped (CI, where PyTorch is installed)")


def pytest_sessionfinish(session, exitstatus):
    if not session.config.getoption("--no-skips"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        reporter.write_line(f"--no-skips: {len(skipped)} test(s) skipped, failing the run:", red=True)
        for report in skipped:
            reporter.write_line(f"  {report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")
        session.exitstatus = 1
