// Command boxagent makes set-top boxes and ARM dev boards easy to live
// with: Bluetooth headsets, uplinks and firmware staging. See README.md.
package main

import (
	"os"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
