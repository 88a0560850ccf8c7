//go:build !race

package attacks

const raceBuild = false
