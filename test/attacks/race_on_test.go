//go:build race

package attacks

// raceBuild: the race detector slows the balancer several times while an in-process
// attacker runs at full speed, so rates are logged but not asserted (scripts/test.d/45-attacks.sh
// runs this package without it, with every assertion).
const raceBuild = true

// raceSlowdown scales the bounds on how long the balancer's CPU takes to end an attack.
const raceSlowdown = 2
