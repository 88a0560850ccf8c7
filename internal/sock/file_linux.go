package sock

// rawFiles: FileWriter writes regular files and pipes with rawWrite.
const rawFiles = true
