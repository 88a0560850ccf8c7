//go:build !race

package attacks

const raceBuild = false

// raceSlowdown scales the bounds on how long the balancer's CPU takes to end an attack.
const raceSlowdown = 1
