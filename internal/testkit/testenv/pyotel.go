package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// PythonOTel is the directory of OpenTelemetry for Python (test/clients/otel-requirements.txt)
// that scripts/setup.d/25-python-otel.sh installs beside the venv; a client run with it on
// PYTHONPATH can trace its calls. The test fails if it is missing or was installed from
// another requirements file than the one in the tree.
func PythonOTel(t testing.TB) string {
	t.Helper()
	req, err := os.ReadFile(filepath.Join(Root(t), "test", "clients", "otel-requirements.txt"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	sum := sha256.Sum256(req)
	dir := filepath.Join(CacheDir(), "pyotel-"+hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(filepath.Join(dir, ".ok")); err != nil {
		t.Fatalf("testenv: no OpenTelemetry for Python at %s: %s", dir, setupHint)
	}
	return dir
}
