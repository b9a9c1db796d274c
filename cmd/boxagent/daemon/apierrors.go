package daemon

import (
	"errors"
	"net/http"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// The agent's one error → API code table. The domain packages return
// typed errors and know nothing of HTTP; here each becomes a status and
// a stable code ({"error":{"code","message","hint"}}), the message keeping
// the daemon's own words. mapError is the server's one mapper; a domain
// is asked in the order its errors were always asked (config, Bluetooth,
// Wi-Fi, audio, network, firmware).
func mapError(err error) *apitype.Error {
	for _, m := range []localapi.ErrorMapper{mapConfigError, mapBluetoothError, mapWiFiError, mapAudioError, mapNetworkError, mapFirmwareError} {
		if e := m(err); e != nil {
			return e
		}
	}
	return nil
}

// errorCode is one row of an error → API code table: an error matched
// with errors.Is, and the status, code and hint it is answered with (its
// message is the error's own).
type errorCode struct {
	Err    error
	Status int
	Code   string
	Hint   string
}

// errorCodes is an error → API code table, read top to bottom.
type errorCodes []errorCode

// Map answers err by the first row it matches, or nil.
func (t errorCodes) Map(err error) *apitype.Error {
	for _, c := range t {
		if errors.Is(err, c.Err) {
			return localapi.Errorf(c.Status, c.Code, err.Error(), c.Hint)
		}
	}
	return nil
}

// mapConfigError: a config file that does not validate.
func mapConfigError(err error) *apitype.Error {
	var ce *config.Error
	var ces config.Errors
	if errors.As(err, &ce) || errors.As(err, &ces) {
		return localapi.Errorf(http.StatusBadRequest, "config.invalid", err.Error(), "fix the file, then run boxagent config check FILE")
	}
	return configCodes.Map(err)
}

var configCodes = errorCodes{
	{board.ErrUnknownBoard, http.StatusBadRequest, "config.invalid", "boxagent board list shows the known boards"},
}

// mapBluetoothError keeps BlueZ's words (the *bluetooth.Error's message);
// the hint is the kind's.
func mapBluetoothError(err error) *apitype.Error {
	e := bluetoothCodes.Map(err)
	var be *bluetooth.Error
	if e != nil && errors.As(err, &be) {
		e.Message = be.Error()
	}
	return e
}

var bluetoothCodes = func() errorCodes {
	t := errorCodes{
		{Err: bluetooth.ErrInvalidAddress, Status: http.StatusBadRequest, Code: "bluetooth.invalid"},
		{Err: bluetooth.ErrNotFound, Status: http.StatusNotFound, Code: "bluetooth.not_found"},
		{Err: bluetooth.ErrAbsent, Status: http.StatusServiceUnavailable, Code: "bluetooth.absent"},
		{Err: bluetooth.ErrNoAdapter, Status: http.StatusServiceUnavailable, Code: "bluetooth.no_adapter"},
		{Err: bluetooth.ErrAdapterOff, Status: http.StatusConflict, Code: "bluetooth.adapter_off"},
		{Err: bluetooth.ErrAuthFailed, Status: http.StatusBadGateway, Code: "bluetooth.auth_failed"},
		{Err: bluetooth.ErrUnreachable, Status: http.StatusGatewayTimeout, Code: "bluetooth.unreachable"},
		{Err: bluetooth.ErrNoAudioService, Status: http.StatusServiceUnavailable, Code: "bluetooth.no_audio_service"},
		{Err: bluetooth.ErrTimeout, Status: http.StatusGatewayTimeout, Code: "bluetooth.timeout"},
		{Err: bluetooth.ErrInProgress, Status: http.StatusConflict, Code: "bluetooth.in_progress"},
		{Err: bluetooth.ErrNotSupported, Status: http.StatusNotImplemented, Code: "bluetooth.not_supported"},
		{Err: bluetooth.ErrFailed, Status: http.StatusBadGateway, Code: "bluetooth.failed"},
	}
	for i := range t {
		t[i].Hint = bluetooth.Hint(t[i].Err)
	}
	return t
}()

// mapWiFiError: a field of a network that does not validate names its
// key; the rest by the table.
func mapWiFiError(err error) *apitype.Error {
	var fe *wifi.FieldError
	if errors.As(err, &fe) {
		return localapi.Errorf(http.StatusBadRequest, "wifi.invalid", fe.Key+": "+fe.Msg, "")
	}
	return wifiCodes.Map(err)
}

var wifiCodes = errorCodes{
	{wifi.ErrWrongPassword, http.StatusUnauthorized, "wifi.wrong_password", "check the password and try again: boxagent wifi connect SSID --psk-stdin"},
	{wifi.ErrNotFound, http.StatusNotFound, "wifi.not_found", "boxagent wifi scan lists the networks in range; a hidden network needs --hidden"},
	{wifi.ErrRejected, http.StatusBadGateway, "wifi.rejected", "the access point refused the box: check its MAC filter and station limit"},
	{wifi.ErrTimeout, http.StatusGatewayTimeout, "wifi.timeout", "move the box closer to the access point, then try again"},
	{wifi.ErrUnknownNetwork, http.StatusNotFound, "wifi.unknown.not_found", "boxagent wifi status lists the known networks"},
	{wifi.ErrNotConnected, http.StatusConflict, "wifi.not_connected", ""},
	{wifi.ErrScanFailed, http.StatusBadGateway, "wifi.scan_failed", "try again in a few seconds"},
	{wifi.ErrNoSupplicant, http.StatusServiceUnavailable, "wifi.absent", "systemctl enable --now wpa_supplicant (it must run with -u)"},
	{wifi.ErrNoInterface, http.StatusServiceUnavailable, "wifi.absent", "boxagent doctor says which interface is used"},
}

// mapAudioError: only the audio package's own errors, which carry their
// hint; one of no kind below is audio.failed.
func mapAudioError(err error) *apitype.Error {
	var ae *audio.Error
	if !errors.As(err, &ae) {
		return nil
	}
	e := audioCodes.Map(err)
	if e == nil {
		e = localapi.Errorf(http.StatusBadGateway, "audio.failed", err.Error(), "")
	}
	e.Hint = ae.Hint
	return e
}

var audioCodes = errorCodes{
	{Err: audio.ErrNotFound, Status: http.StatusNotFound, Code: "audio.not_found"},
	{Err: audio.ErrInvalid, Status: http.StatusBadRequest, Code: "audio.invalid"},
	{Err: audio.ErrUnavailable, Status: http.StatusConflict, Code: "audio.unavailable"},
	{Err: audio.ErrUnreachable, Status: http.StatusServiceUnavailable, Code: "audio.unreachable"},
	{Err: audio.ErrClosed, Status: http.StatusServiceUnavailable, Code: "audio.unreachable"},
}

// mapNetworkError: the table, then a link the kernel refused, with the
// link's own hint.
func mapNetworkError(err error) *apitype.Error {
	if e := networkCodes.Map(err); e != nil {
		return e
	}
	var le *network.LinkError
	if errors.As(err, &le) {
		return localapi.Errorf(http.StatusInternalServerError, "network.link_failed", err.Error(), le.Hint())
	}
	return nil
}

var networkCodes = errorCodes{
	{network.ErrInvalid, http.StatusBadRequest, "network.invalid", "fix [network] in the config file, then boxagent config check FILE; nothing was changed"},
	{network.ErrNoUplink, http.StatusNotFound, "network.not_found", "boxagent net show lists the uplinks"},
	{errNoConfiguredUplink, http.StatusNotFound, "network.not_found", "boxagent net show lists the uplinks"},
	{network.ErrNoVLANSupport, http.StatusInternalServerError, "network.no_vlan", "modprobe 8021q (and add 8021q to /etc/modules)"},
}

// mapFirmwareError: a stick the agent cannot use says why in its own
// words; the rest by the table.
func mapFirmwareError(err error) *apitype.Error {
	var se *firmware.StickError
	if errors.As(err, &se) {
		code := "fw.stick_unsupported"
		if errors.Is(err, firmware.ErrReadOnly) {
			code = "fw.read_only"
		}
		return localapi.Errorf(http.StatusConflict, code, se.Msg, "")
	}
	return firmwareCodes.Map(err)
}

var firmwareCodes = errorCodes{
	{firmware.ErrNoStick, http.StatusNotFound, "fw.no_stick", "plug a FAT32 USB stick into the box; boxagent fw sticks lists what the agent sees"},
	{firmware.ErrSeveralSticks, http.StatusBadRequest, "fw.invalid", "choose one: --device sdX1"},
	{firmware.ErrMissingExtra, http.StatusUnprocessableEntity, "fw.missing_extra", "put the file at the package's root, or give its text in the board profile's [firmware.extra_text]"},
	{firmware.ErrNotFound, http.StatusNotFound, "fw.not_found", "boxagent fw list shows the artifacts; boxagent fw add FILE imports one"},
	{firmware.ErrBadHash, http.StatusBadRequest, "fw.invalid", "an artifact is named by its full SHA-256 (boxagent fw list)"},
	{firmware.ErrNoPrevious, http.StatusNotFound, "fw.no_previous", "a rollback needs two different packages staged before"},
	{firmware.ErrNoSpace, http.StatusConflict, "fw.no_space", "delete files from the stick or use a larger one"},
	{firmware.ErrReadOnly, http.StatusConflict, "fw.read_only", "slide the stick's lock switch, or use another stick"},
	{firmware.ErrTooLarge, http.StatusConflict, "fw.too_large", ""},
	{firmware.ErrStoreSpace, http.StatusConflict, "fw.too_large", "free space in the artifact store (boxagent fw list; older artifacts are pruned) or use a smaller package"},
	{errNotLAN, http.StatusBadRequest, "fw.not_lan", "serve the package from a host on the LAN, without redirects to the Internet"},
	{errStalled, http.StatusGatewayTimeout, "fw.stalled", "check the server and the network, then add the package again"},
	{firmware.ErrGone, http.StatusConflict, "fw.stick_gone", "plug the stick back in and stage again: the unfinished copy is cleaned up"},
	{firmware.ErrPolicy, http.StatusBadRequest, "fw.policy", "check the board's [firmware] verify method and the config's [firmware] keys"},
	{firmware.ErrSize, http.StatusBadRequest, "fw.invalid", "the download was cut short: try again"},
	{firmware.ErrReadBack, http.StatusInternalServerError, "fw.store_corrupt", "remove the artifact and add the package again"},
	{firmware.ErrUnknownSigner, http.StatusUnprocessableEntity, "fw.verify_failed", "the package is signed with a key this box does not trust: check [firmware] keys"},
	{firmware.ErrSignature, http.StatusUnprocessableEntity, "fw.verify_failed", "the package was changed after it was signed, or is damaged"},
	{firmware.ErrUnsigned, http.StatusUnprocessableEntity, "fw.verify_failed", "sign the package with signapk -w (recovery refuses unsigned packages)"},
	{firmware.ErrFooter, http.StatusUnprocessableEntity, "fw.verify_failed", "the package has no whole-file signature footer: sign it with signapk -w"},
	{firmware.ErrDigest, http.StatusUnprocessableEntity, "fw.verify_failed", "the package differs from the one the SHA-256 names"},
	{firmware.ErrMissingEntry, http.StatusUnprocessableEntity, "fw.verify_failed", "this is not a recovery package for this board"},
	{firmware.ErrStructure, http.StatusUnprocessableEntity, "fw.verify_failed", "the file is not a valid zip package (truncated or damaged?)"},
}
