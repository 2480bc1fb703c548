; Inno Setup script of SKELEX Desktop for Windows (NOT RUN YET: no Windows machine here).
; Input: the one-folder bundle that `pyinstaller installer\skelex-desktop.spec` writes to
; dist\skelex-desktop (SKELEX_EDITION=reader or full). Compile:
;   iscc /DEdition=reader /DVersion=0.1.0 installer\windows\skelex-desktop.iss
; Output: dist\skelex-desktop-<edition>-<version>-windows-x64-setup.exe.
; Program files go to Program Files; user data (%LOCALAPPDATA%\skelex-desktop: database,
; caches, models) is never removed by the uninstaller, and an upgrade replaces program files only.

#ifndef Edition
  #define Edition "reader"
#endif
#ifndef Version
  #define Version "0.1.0"
#endif

[Setup]
AppId={{5E1C9A37-6B0E-4C1D-9A52-3F0B7D2C8E41}
AppName=SKELEX Desktop
AppVersion={#Version}
AppVerName=SKELEX Desktop {#Version} ({#Edition} edition)
AppPublisher=SKELEX Desktop team
DefaultDirName={autopf}\SKELEX Desktop
DefaultGroupName=SKELEX Desktop
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
OutputDir=..\..\dist
OutputBaseFilename=skelex-desktop-{#Edition}-{#Version}-windows-x64-setup
SetupIconFile=..\skelex-desktop.ico
UninstallDisplayIcon={app}\skelex-desktop.exe
Compression=lzma2
SolidCompression=yes
ChangesAssociations=yes

[Files]
Source: "..\..\dist\skelex-desktop\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\SKELEX Desktop"; Filename: "{app}\skelex-desktop.exe"
Name: "{autodesktop}\SKELEX Desktop"; Filename: "{app}\skelex-desktop.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Registry]
; .dcm files: "Open with SKELEX Desktop" (application/dicom)
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "SKELEXDesktop.dicom"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\SKELEXDesktop.dicom"; ValueType: string; ValueName: ""; ValueData: "DICOM image"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\SKELEXDesktop.dicom\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\skelex-desktop.exe,0"
Root: HKA; Subkey: "Software\Classes\SKELEXDesktop.dicom\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\skelex-desktop.exe"""

[Run]
Filename: "{app}\skelex-desktop.exe"; Description: "Start SKELEX Desktop"; Flags: nowait postinstall skipifsilent
