//go:build !linux

package sock

// rawFiles: elsewhere FileWriter returns the file itself (rawWrite is a plain write there).
const rawFiles = false
