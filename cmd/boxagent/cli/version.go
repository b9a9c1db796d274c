package cli

import (
	"context"
	"fmt"
	"runtime"
)

func versionCmd() *Command {
	return &Command{
		Name: "version", Short: "print the version of this binary",
		Flags: jsonFlag,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if o.JSON {
				return printJSON(e.Stdout, map[string]string{
					"version": Version(), "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
				})
			}
			_, err := fmt.Fprintf(e.Stdout, "boxagent %s (%s %s/%s)\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
