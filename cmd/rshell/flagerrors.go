package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagError rewrites the flag parser's errors for people: a bad value says
// what the flag takes (the parser's own says `strconv.ParseBool: parsing
// "maybe": invalid syntax`), and every flag error points at the command's
// --help.
func flagError(cmd *cobra.Command, err error) error {
	var bad *pflag.InvalidValueError
	if errors.As(err, &bad) {
		f := bad.GetFlag()
		return fmt.Errorf("--%s takes %s, not %q (see '%s --help')", f.Name, flagTakes(f.Value.Type()), bad.GetValue(), cmd.CommandPath())
	}
	return fmt.Errorf("%v (see '%s --help')", err, cmd.CommandPath())
}

// flagTakes describes the values a flag of the parser's type typ takes.
func flagTakes(typ string) string {
	switch typ {
	case "bool":
		return "true or false"
	case "duration":
		return "a duration such as 500ms, 10s or 2h"
	case "int", "int8", "int16", "int32", "int64":
		return "a whole number"
	case "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number, 0 or more"
	case "float32", "float64":
		return "a number"
	}
	return "a " + typ
}
